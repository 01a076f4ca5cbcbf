// One Linux App Service plan shared by the web and worker sites (scale out the plan, or split it, in README).
param location string
param tags object
param name string
param skuName string = 'B1'
param capacity int = 1

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'linux'
  //checkov:skip=CKV_AZURE_225:Zone redundancy needs Premium v3 with 3+ instances (about 10x the B1 cost); choose it with appServiceSkuName for production SLAs.
  sku: {
    name: skuName
    capacity: capacity
  }
  properties: {
    reserved: true
  }
}

output id string = plan.id
output name string = plan.name

// Azure OpenAI (only when openAiEnabled): keys disabled, the site identities call it with Entra tokens
// (Cognitive Services OpenAI User, granted in appservice.bicep).
param location string
param tags object
param name string
param modelName string
param modelVersion string
param capacity int = 10
param deploymentName string = modelName

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: { name: 'S0' }
  identity: { type: 'SystemAssigned' }
  //checkov:skip=CKV_AZURE_134:Public network access is needed by App Service without VNet integration; local (key) auth is disabled, so every call needs an Entra token with the OpenAI User role.
  //checkov:skip=CKV2_AZURE_22:Customer-managed keys need a key, a vault access path and rotation process beyond the default deployment; data is encrypted with Microsoft-managed keys.
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
    }
  }
}

resource deployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: deploymentName
  sku: {
    name: 'GlobalStandard'
    capacity: capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
  }
}

output name string = account.name
output endpoint string = account.properties.endpoint
output deploymentName string = deployment.name

// Key Vault in RBAC mode. The sites read secrets through Key Vault references (Secrets User, granted in
// appservice.bicep); the deploying principal writes the generated ones in the postprovision hook (Secrets Officer).
param location string
param tags object
param name string
param principalId string
@allowed(['User', 'ServicePrincipal'])
param principalType string = 'User'
param logAnalyticsWorkspaceId string

// Built-in role: Key Vault Secrets Officer.
var secretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  //checkov:skip=CKV_AZURE_109:Public network access is needed: App Service (no VNet integration on the default SKU) and the operator's azd hooks reach the vault over TLS with Entra RBAC; a private endpoint + VNet is the documented hardening step.
  //checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109: the vault must be reachable from App Service without a VNet.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // Only trusted Azure services may bypass; everything else needs an Entra token with a role.
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(vault.id, principalId, secretsOfficerRoleId)
  scope: vault
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsOfficerRoleId)
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [{ categoryGroup: 'audit', enabled: true }]
  }
}

output name string = vault.name
output endpoint string = vault.properties.vaultUri

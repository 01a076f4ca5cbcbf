// One Linux Python site (web or worker) with its system-assigned identity, the Key Vault role its settings
// need, and its app settings. The settings are a separate resource created after the role assignment, so the
// first start already resolves the Key Vault references.
param location string
param tags object
param name string
param appServicePlanId string
@description('Startup command; run through bash because a zip deploy does not keep the executable bit.')
param appCommandLine string
param healthCheckPath string
param keyVaultName string
param appSettings object
param logAnalyticsWorkspaceId string
@description('Azure OpenAI account the identity may call (Cognitive Services OpenAI User); empty when disabled.')
param openAiAccountName string = ''
param pythonVersion string = '3.11'

// Built-in roles.
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'
var cognitiveServicesOpenAiUserRoleId = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'app,linux'
  //checkov:skip=CKV_AZURE_13:Django does its own authentication (admin sessions, API tokens) and webhooks must be reachable by Event Grid, Twilio and Meta; App Service Authentication would block them.
  //checkov:skip=CKV_AZURE_17:Client certificates would reject the provider webhooks, which cannot present one; webhooks are authenticated by signature or shared secret instead.
  //checkov:skip=CKV_AZURE_222:The web site must be public (providers post webhooks to it); the worker's only endpoint is its health answer.
  identity: {
    type: 'SystemAssigned'
  }
  //checkov:skip=CKV_AZURE_212:One instance on the default B1 plan keeps the cost down; scale the plan out to 2+ instances for failover (README: Scaling).
  //checkov:skip=CKV_AZURE_88:Relay keeps no files on local storage (media go to the database or are fetched on demand); no Azure Files mount is needed.
  properties: {
    serverFarmId: appServicePlanId
    httpsOnly: true
    clientAffinityEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: 'SystemAssigned'
    siteConfig: {
      linuxFxVersion: 'PYTHON|${pythonVersion}'
      appCommandLine: appCommandLine
      alwaysOn: true
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      healthCheckPath: healthCheckPath
      detailedErrorLoggingEnabled: true
      httpLoggingEnabled: true
      requestTracingEnabled: true
      remoteDebuggingEnabled: false
      use32BitWorkerProcess: false
    }
  }
}

// Publishing with basic credentials (FTP and SCM) off: azd deploys with the operator's Entra token.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, site.id, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
  }
}

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = if (!empty(openAiAccountName)) {
  name: openAiAccountName
}

resource openAiUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(openAiAccountName)) {
  name: guid(resourceGroup().id, site.id, cognitiveServicesOpenAiUserRoleId)
  scope: openAi
  properties: {
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', cognitiveServicesOpenAiUserRoleId)
  }
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  dependsOn: [secretsUser]
  // These checks read siteConfig and misfire on the app-settings config resource; the site above satisfies them.
  //checkov:skip=CKV_AZURE_13:Not a site config (app settings only); see the skip on the site.
  //checkov:skip=CKV_AZURE_63:Not a site config (app settings only); HTTP logging is on in siteConfig.
  //checkov:skip=CKV_AZURE_65:Not a site config (app settings only); detailed errors are on in siteConfig.
  name: 'appsettings'
  //checkov:skip=CKV_AZURE_66:Not a site config (app settings only); request tracing is on in siteConfig.
  //checkov:skip=CKV_AZURE_80:Not a site config, and the site runs Python, not .NET.
  //checkov:skip=CKV_AZURE_88:Not a site config (app settings only); see the skip on the site.
  //checkov:skip=CKV_AZURE_222:Not a site config (app settings only); see the skip on the site.
  properties: union(appSettings, {
    // The platform also sets WEBSITE_HOSTNAME; this names the default host explicitly for ALLOWED_HOSTS.
    DJANGO_ALLOWED_HOSTS: site.properties.defaultHostName
    PUBLIC_BASE_URL: 'https://${site.properties.defaultHostName}'
  })
}

// Console and HTTP logs to Log Analytics (the app's own JSON logs arrive as AppServiceConsoleLogs).
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'logs'
  scope: site
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      { category: 'AppServiceConsoleLogs', enabled: true }
      { category: 'AppServiceHTTPLogs', enabled: true }
      { category: 'AppServicePlatformLogs', enabled: true }
    ]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

output name string = site.name
output hostName string = site.properties.defaultHostName
output uri string = 'https://${site.properties.defaultHostName}'
output identityPrincipalId string = site.identity.principalId

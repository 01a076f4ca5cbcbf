// Relay on Azure: `azd up` provisions everything below into one resource group.
// The WhatsApp channel itself cannot be provisioned (portal + Meta embedded signup); its Channel ID comes back
// through `azd env set ACS_CHANNEL_REGISTRATION_ID <guid>` and a second `azd provision`.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; used in resource names and the azd-env-name tag.')
param environmentName string

@minLength(1)
@description('Primary region for every resource except the global ones (Communication Services, Event Grid topic).')
param location string

@description('Object id of the deploying user or service principal: Key Vault Secrets Officer and PostgreSQL Entra admin.')
param principalId string

@description('User principal name (or service principal display name) of principalId: the PostgreSQL Entra admin role name.')
param principalName string = ''

@allowed(['User', 'ServicePrincipal'])
param principalType string = 'User'

@description('Where Communication Services stores data at rest.')
param acsDataLocation string = 'United States'

@description('Channel ID (GUID) of the WhatsApp channel connected in the portal. Empty until the channel exists: ACS stays disabled.')
param acsChannelRegistrationId string = ''

@description('Create an Azure OpenAI account and model deployment for the AI fallback.')
param openAiEnabled bool = false

@description('Region of the Azure OpenAI account (model availability differs by region).')
param openAiLocation string = location

param openAiModelName string = 'gpt-4o-mini'
param openAiModelVersion string = '2024-07-18'
param openAiDeploymentCapacity int = 10

@description('App Service plan SKU shared by web and worker.')
param appServiceSkuName string = 'B1'

@description('PostgreSQL Flexible Server compute SKU and tier.')
param postgresSkuName string = 'Standard_B1ms'
param postgresSkuTier string = 'Burstable'

@allowed(['Basic', 'Standard'])
@description('Azure Cache for Redis tier. Basic or Standard only: Dramatiq\'s Redis broker does not support cluster mode.')
param redisSkuName string = 'Basic'
param redisCapacity int = 0

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var webAppName = 'app-web-${resourceToken}'
var workerAppName = 'app-worker-${resourceToken}'
var keyVaultName = 'kv-${resourceToken}'
var postgresDatabaseName = 'relay'

resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    name: keyVaultName
    principalId: principalId
    principalType: principalType
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'psql-${resourceToken}'
    databaseName: postgresDatabaseName
    skuName: postgresSkuName
    skuTier: postgresSkuTier
    adminPrincipalId: principalId
    adminPrincipalName: principalName
    adminPrincipalType: principalType
  }
}

module redis 'modules/redis.bicep' = {
  name: 'redis'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'redis-${resourceToken}'
    skuName: redisSkuName
    capacity: redisCapacity
    keyVaultName: keyVault.outputs.name
  }
}

module communication 'modules/communication.bicep' = {
  name: 'communication'
  scope: rg
  params: {
    tags: tags
    name: 'acs-${resourceToken}'
    systemTopicName: 'evgt-acs-${resourceToken}'
    dataLocation: acsDataLocation
    keyVaultName: keyVault.outputs.name
  }
}

module openAi 'modules/openai.bicep' = if (openAiEnabled) {
  name: 'openai'
  scope: rg
  params: {
    location: openAiLocation
    tags: tags
    name: 'oai-${resourceToken}'
    modelName: openAiModelName
    modelVersion: openAiModelVersion
    capacity: openAiDeploymentCapacity
  }
}

module plan 'modules/appserviceplan.bicep' = {
  name: 'appserviceplan'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'plan-${resourceToken}'
    skuName: appServiceSkuName
  }
}

// Key Vault references: resolved by each site's system-assigned identity (Key Vault Secrets User).
var kvRef = '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName='

// Settings both processes need. Secrets are Key Vault references, never values.
var sharedAppSettings = {
  DJANGO_SETTINGS_MODULE: 'config.settings.base'
  DJANGO_DEBUG: 'false'
  DJANGO_SECRET_KEY: '${kvRef}DJANGO-SECRET-KEY)'
  FIELD_ENCRYPTION_KEY: '${kvRef}FIELD-ENCRYPTION-KEY)'
  REDIS_URL: '${kvRef}REDIS-URL)'
  ACS_ENABLED: string(!empty(acsChannelRegistrationId))
  ACS_CONNECTION_STRING: '${kvRef}ACS-CONNECTION-STRING)'
  ACS_CHANNEL_REGISTRATION_ID: acsChannelRegistrationId
  ACS_EVENTGRID_SECRET: '${kvRef}ACS-EVENTGRID-SECRET)'
  DEFAULT_CHANNEL: 'acs'
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.applicationInsightsConnectionString
  LOG_FORMAT: 'json'
  OPENAI_BASE_URL: openAiEnabled ? '${openAi.outputs.endpoint}openai/v1/' : ''
  AI_MODEL: openAiEnabled ? openAi.outputs.deploymentName : openAiModelName
  AZURE_OPENAI_ENDPOINT: openAiEnabled ? openAi.outputs.endpoint : ''
  // Oryx builds requirements.txt into a virtualenv on deploy; collectstatic runs there too.
  SCM_DO_BUILD_DURING_DEPLOYMENT: 'true'
  ENABLE_ORYX_BUILD: 'true'
}

module web 'modules/appservice.bicep' = {
  name: 'web'
  scope: rg
  params: {
    location: location
    tags: union(tags, { 'azd-service-name': 'web' })
    name: webAppName
    appServicePlanId: plan.outputs.id
    appCommandLine: 'bash deploy/web.sh'
    healthCheckPath: '/health/'
    keyVaultName: keyVault.outputs.name
    openAiAccountName: openAiEnabled ? openAi.outputs.name : ''
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    appSettings: union(sharedAppSettings, {
      // Passwordless: no password in the URL, so apps.core.db.postgresql fetches an Entra token for this identity.
      DATABASE_URL: 'postgres://${webAppName}@${postgres.outputs.host}:5432/${postgresDatabaseName}?sslmode=require'
      WEB_CONCURRENCY: '4'
      // Tables created by migrations (owned by this identity) get row privileges for the worker identity.
      DATABASE_GRANT_ROLES: workerAppName
      // Migrations run before gunicorn starts (deploy/migrate.sh); give them more than the default 230 s.
      WEBSITES_CONTAINER_START_TIME_LIMIT: '600'
    })
  }
}

module worker 'modules/appservice.bicep' = {
  name: 'worker'
  scope: rg
  params: {
    location: location
    tags: union(tags, { 'azd-service-name': 'worker' })
    name: workerAppName
    appServicePlanId: plan.outputs.id
    appCommandLine: 'bash deploy/worker.sh'
    healthCheckPath: '/health/'
    keyVaultName: keyVault.outputs.name
    openAiAccountName: openAiEnabled ? openAi.outputs.name : ''
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    appSettings: union(sharedAppSettings, {
      DATABASE_URL: 'postgres://${workerAppName}@${postgres.outputs.host}:5432/${postgresDatabaseName}?sslmode=require'
      DRAMATIQ_PROCESSES: '1'
      DRAMATIQ_THREADS: '8'
      // The worker answers App Service's pings from deploy/worker_health.py; it serves no site traffic.
      WORKER_HEARTBEAT_MAX_AGE_SECONDS: '120'
    })
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.endpoint
output SERVICE_WEB_NAME string = web.outputs.name
output SERVICE_WEB_IDENTITY_PRINCIPAL_ID string = web.outputs.identityPrincipalId
output SERVICE_WORKER_NAME string = worker.outputs.name
output SERVICE_WORKER_IDENTITY_PRINCIPAL_ID string = worker.outputs.identityPrincipalId
output WEB_URI string = web.outputs.uri
output WEB_HOSTNAME string = web.outputs.hostName
output POSTGRES_HOST string = postgres.outputs.host
output POSTGRES_SERVER_NAME string = postgres.outputs.name
output POSTGRES_DATABASE string = postgresDatabaseName
output POSTGRES_ADMIN_NAME string = principalName
output REDIS_HOST string = redis.outputs.host
output ACS_NAME string = communication.outputs.name
output ACS_ENDPOINT string = communication.outputs.endpoint
output EVENTGRID_SYSTEM_TOPIC_NAME string = communication.outputs.systemTopicName
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output OPENAI_ENABLED bool = openAiEnabled
output AZURE_OPENAI_ENDPOINT string = openAiEnabled ? openAi.outputs.endpoint : ''

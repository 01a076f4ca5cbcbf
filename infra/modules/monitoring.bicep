// Log Analytics workspace + workspace-based Application Insights (the apps export OpenTelemetry to it).
param location string
param tags object
param logAnalyticsName string
param applicationInsightsName string
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: retentionInDays
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
  }
}

output logAnalyticsWorkspaceId string = logAnalytics.id
output applicationInsightsName string = applicationInsights.name
// Not a secret: it only lets a process send telemetry (Microsoft documents it as safe to expose in clients).
output applicationInsightsConnectionString string = applicationInsights.properties.ConnectionString

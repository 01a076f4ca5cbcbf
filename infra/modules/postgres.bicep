// PostgreSQL Flexible Server 16, Entra-only authentication (no password exists to leak), TLS required,
// reachable only from Azure services. The app identities' roles are created by the postprovision hook.
param location string
param tags object
param name string
param databaseName string
param skuName string = 'Standard_B1ms'
param skuTier string = 'Burstable'
param storageSizeGB int = 32
param adminPrincipalId string
param adminPrincipalName string
@allowed(['User', 'ServicePrincipal', 'Group'])
param adminPrincipalType string = 'User'

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
  }
  properties: {
    version: '16'
    storage: {
      storageSizeGB: storageSizeGB
      autoGrow: 'Enabled'
    }
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: 'Disabled'
      tenantId: subscription().tenantId
    }
    backup: {
      backupRetentionDays: 7
      // Geo-redundant backup doubles backup storage and needs a paired region: turn it on for data that must
      // survive a region loss.
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
    network: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

// TLS only (it is the default; stated so a portal change shows up as drift).
resource requireSecureTransport 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'require_secure_transport'
  properties: {
    value: 'on'
    source: 'user-override'
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

// 0.0.0.0 - 0.0.0.0 is Azure's "allow Azure services" rule: App Service outbound addresses, no internet range.
// The postprovision hook opens the operator's own address for the duration of the role setup only.
resource allowAzureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: server
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

// Cannot be nested in the server and must come after the firewall rules (concurrent server operations fail).
resource entraAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: adminPrincipalId
  dependsOn: [allowAzureServices, database, requireSecureTransport]
  properties: {
    principalName: adminPrincipalName
    principalType: adminPrincipalType
    tenantId: subscription().tenantId
  }
}

output name string = server.name
output host string = server.properties.fullyQualifiedDomainName
output databaseName string = database.name

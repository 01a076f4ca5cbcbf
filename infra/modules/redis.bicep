// Azure Cache for Redis, non-clustered (Basic/Standard): Dramatiq's Redis broker runs Lua over keys it builds
// itself and calls KEYS, which cluster mode rejects (dramatiq #754). TLS only on 6380.
// The rediss:// URL (with the access key) goes to Key Vault, never to an output.
param location string
param tags object
param name string
@allowed(['Basic', 'Standard'])
param skuName string = 'Basic'
param capacity int = 0
param keyVaultName string

resource redis 'Microsoft.Cache/redis@2024-11-01' = {
  //checkov:skip=CKV_AZURE_89:Public network access stays on because App Service on the default SKU has no VNet integration; TLS 1.2 and the access key protect it. Private endpoint + VNet integration is the hardening step (README).
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: skuName
      family: 'C'
      capacity: capacity
    }
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    redisConfiguration: {
      // Dramatiq keeps its queues in Redis: never evict them under memory pressure.
      'maxmemory-policy': 'noeviction'
    }
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource redisUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  //checkov:skip=CKV_AZURE_41:Rewritten from the resource's current key on every `azd provision`; an expiry date would silently break the app's Key Vault reference. Rotate by regenerating the key and re-provisioning.
  parent: vault
  name: 'REDIS-URL'
  properties: {
    contentType: 'text/uri-list'
    value: 'rediss://:${redis.listKeys().primaryKey}@${redis.properties.hostName}:${redis.properties.sslPort}/0'
    attributes: {
      enabled: true
    }
  }
}

output name string = redis.name
output host string = redis.properties.hostName

// Communication Services + its Event Grid system topic. The event subscription to the webhook is created by the
// postdeploy hook: Event Grid validates the endpoint when the subscription is created, and the code is only
// deployed after provisioning.
param tags object
param name string
param systemTopicName string
param dataLocation string
param keyVaultName string

resource acs 'Microsoft.Communication/communicationServices@2025-05-01' = {
  name: name
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: systemTopicName
  location: 'global'
  tags: tags
  properties: {
    source: acs.id
    topicType: 'Microsoft.Communication.CommunicationServices'
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource connectionString 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  //checkov:skip=CKV_AZURE_41:Rewritten from the resource's current key on every `azd provision`; an expiry date would silently break the app's Key Vault reference. Rotate by regenerating the key and re-provisioning.
  parent: vault
  name: 'ACS-CONNECTION-STRING'
  properties: {
    contentType: 'text/plain'
    value: acs.listKeys().primaryConnectionString
    attributes: {
      enabled: true
    }
  }
}

output name string = acs.name
output endpoint string = 'https://${acs.properties.hostName}'
output systemTopicName string = systemTopic.name

"""azd postdeploy: subscribe the deployed webhook to the Communication Services events, and say how to
connect the WhatsApp channel.

Runs after deploy because Event Grid validates the endpoint when the subscription is created or updated
(the webhook answers the SubscriptionValidationEvent handshake). Idempotent: an existing subscription is
updated to the current endpoint and secret.
"""

from __future__ import annotations

import sys
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RetryableError, az, az_json, banner, env, retry

SUBSCRIPTION_NAME = "relay-whatsapp-webhook"
EVENT_TYPES = (
    "Microsoft.Communication.AdvancedMessageReceived",
    "Microsoft.Communication.AdvancedMessageDeliveryStatusUpdated",
)
WEBHOOK_PATH = "/api/v1/whatsapp/webhook/"


def webhook_secret(vault: str) -> str:
    result = az(
        "keyvault",
        "secret",
        "show",
        "--vault-name",
        vault,
        "--name",
        "ACS-EVENTGRID-SECRET",
        "--query",
        "value",
        check=False,
    )
    if result.returncode != 0:
        raise RetryableError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "unknown error")
    value = result.stdout.strip().strip('"')
    # During a rotation the secret holds "new,old": the subscription always gets the first (newest) one.
    return value.split(",")[0].strip()


def subscription_apply(*, group: str, topic: str, endpoint: str) -> str:
    existing = az(
        "eventgrid",
        "system-topic",
        "event-subscription",
        "show",
        "--resource-group",
        group,
        "--system-topic-name",
        topic,
        "--name",
        SUBSCRIPTION_NAME,
        "--query",
        "name",
        check=False,
    )
    verb = "update" if existing.returncode == 0 else "create"
    args = [
        "eventgrid",
        "system-topic",
        "event-subscription",
        verb,
        "--resource-group",
        group,
        "--system-topic-name",
        topic,
        "--name",
        SUBSCRIPTION_NAME,
        "--endpoint",
        endpoint,
        "--included-event-types",
        *EVENT_TYPES,
    ]
    if verb == "create":
        args += [
            "--endpoint-type",
            "webhook",
            "--event-delivery-schema",
            "eventgridschema",
            "--max-delivery-attempts",
            "30",
            "--event-ttl",
            "1440",
        ]
    result = az(*args, "--query", "provisioningState", check=False)
    if result.returncode != 0:
        # Usually the site is still starting and the validation handshake timed out: try again.
        raise RetryableError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "unknown error")
    return verb


def channel_instructions(*, acs_name: str, group: str, web: str, worker: str) -> None:
    banner(
        [
            "Connect the WhatsApp channel (it cannot be provisioned by Bicep):",
            f"  1. Azure portal -> resource group {group} -> Communication Services {acs_name}",
            "     -> Advanced Messaging -> Channels -> Connect -> WhatsApp.",
            "  2. Sign in to Facebook in Meta's embedded signup, choose or create the WhatsApp Business",
            "     Account and phone number, and finish. Copy the Channel ID (a GUID) from the Channels tab.",
            "  3. Give it to Relay and subscribe the webhook:",
            "       azd env set ACS_CHANNEL_REGISTRATION_ID <channel-id>",
            "       azd provision            # sets ACS_CHANNEL_REGISTRATION_ID and ACS_ENABLED on both sites",
            "       azd hooks run postdeploy # creates the Event Grid subscription",
            "     (or set it directly: az webapp config appsettings set -g " + group + " -n " + web,
            "      --settings ACS_CHANNEL_REGISTRATION_ID=<channel-id> ACS_ENABLED=true; same for " + worker + ")",
        ]
    )


def main() -> None:
    group = env("AZURE_RESOURCE_GROUP")
    topic = env("EVENTGRID_SYSTEM_TOPIC_NAME")
    vault = env("AZURE_KEY_VAULT_NAME")
    hostname = env("WEB_HOSTNAME")
    acs_name = env("ACS_NAME")
    web, worker = env("SERVICE_WEB_NAME"), env("SERVICE_WORKER_NAME")
    channel_id = env("ACS_CHANNEL_REGISTRATION_ID", required=False)

    if not channel_id:
        # ACS stays disabled until the channel exists, so the webhook would refuse Event Grid's handshake.
        print("Event Grid subscription: skipped until ACS_CHANNEL_REGISTRATION_ID is set")
        channel_instructions(acs_name=acs_name, group=group, web=web, worker=worker)
        return

    secret = retry(lambda: webhook_secret(vault), what="reading ACS-EVENTGRID-SECRET")
    endpoint = f"https://{hostname}{WEBHOOK_PATH}?code={urllib.parse.quote(secret, safe='')}"
    topic_info = az_json("eventgrid", "system-topic", "show", "--resource-group", group, "--name", topic)
    print(f"Event Grid system topic {topic_info['name']}: subscribing https://{hostname}{WEBHOOK_PATH}")
    verb = retry(
        lambda: subscription_apply(group=group, topic=topic, endpoint=endpoint),
        what="event subscription",
        attempts=10,
        delay_seconds=30,
    )
    print(f"  subscription {SUBSCRIPTION_NAME}: {verb}d for {', '.join(t.rsplit('.', 1)[-1] for t in EVENT_TYPES)}")
    print(f"WhatsApp channel {channel_id} is connected; Relay answers at https://{hostname}/")


if __name__ == "__main__":
    main()

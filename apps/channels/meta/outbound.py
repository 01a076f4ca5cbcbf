"""Graph API calls: the `/messages` body for an outbound message, one HTTP call, and Meta's errors mapped to
ChannelError (permanent, transient with a wait, or ambiguous)."""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings

from ..base import ChannelError, MessageKind, OutboundMessage
from .inbound import MEDIA_KINDS, as_dict, as_str

WINDOW_CLOSED = "131047"
# Throughput (130429), pair rate (131056), app / WABA API call limits (4, 80007): wait and retry.
RATE_CODES = frozenset({"130429", "131056", "4", "80007"})
TEMPLATE_ERROR_CODES = frozenset({"132000", "132001", "132005", "132012", "132015", "132016"})
PERMANENT_CODES = frozenset(
    {WINDOW_CLOSED, "131050", "131026", "131049", "131048", "131051", "131030", "131042", "100", "190"}
    | TEMPLATE_ERROR_CODES
)
# Meta's guidance for the pair limit is about one message per 6 s to one user.
PAIR_RATE_RETRY_SECONDS = 6.0


def headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.META_ACCESS_TOKEN}"}


def url(path: str) -> str:
    return settings.META_GRAPH_BASE_URL.rstrip("/") + "/" + path.lstrip("/")


def payload_build(outbound: OutboundMessage) -> dict[str, Any]:
    """The Graph API body for `outbound`. Raises ChannelError(permanent) for a message Meta would refuse."""
    to = outbound.to.removeprefix("+")
    payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
    if outbound.kind == MessageKind.TEMPLATE or outbound.template_name:
        template: dict[str, Any] = {
            "name": outbound.template_name,
            "language": {"code": outbound.template_language or "en"},
        }
        if outbound.template_parameters:
            parameters = []
            for parameter in outbound.template_parameters:
                if not parameter.value.strip():
                    raise ChannelError(f"template parameter {parameter.name!r} is empty", "132000", permanent=True)
                item = {"type": "text", "text": parameter.value}
                if outbound.template_named_parameters:
                    item["parameter_name"] = parameter.name
                parameters.append(item)
            template["components"] = [{"type": "body", "parameters": parameters}]
        payload.update(type="template", template=template)
    elif outbound.media is not None and outbound.media.url:
        media_type = outbound.kind.value if outbound.kind.value in MEDIA_KINDS else "document"
        media_object: dict[str, Any] = {"link": outbound.media.url}
        caption = outbound.media.caption or outbound.text
        if caption and media_type in ("image", "video", "document"):
            media_object["caption"] = caption
        if media_type == "document" and outbound.media.file_name:
            media_object["filename"] = outbound.media.file_name
        payload.update({"type": media_type, media_type: media_object})
    else:
        if not outbound.text.strip():
            raise ChannelError("empty message body", "empty_message", permanent=True)
        payload.update(type="text", text={"preview_url": False, "body": outbound.text})
    return payload


def error_from_response(response: httpx.Response) -> ChannelError:
    try:
        error = as_dict(as_dict(response.json()).get("error"))
    except ValueError:
        error = {}
    code = as_str(error.get("code")) or str(response.status_code)
    message = as_str(error.get("message")) or f"Graph API HTTP {response.status_code}"
    details = as_str(as_dict(error.get("error_data")).get("details"))
    if details:
        message = f"{message} ({details})"
    retry_after = None
    header = response.headers.get("retry-after")
    if header:
        try:
            retry_after = max(0.0, float(header))
        except ValueError:
            retry_after = None
    if code in RATE_CODES or response.status_code == 429:
        if retry_after is None and code == "131056":
            retry_after = PAIR_RATE_RETRY_SECONDS
        return ChannelError(message, code, retry_after=retry_after)
    if code in PERMANENT_CODES:
        return ChannelError(message, code, permanent=True)
    if response.status_code >= 500:
        return ChannelError(message, code, retry_after=retry_after)
    return ChannelError(message, code, permanent=True)


def request(method: str, target: str, **kwargs) -> httpx.Response:
    """One Graph call. Network failures become ChannelError; the response is returned whatever its status."""
    seconds = float(settings.CHANNEL_HTTP_TIMEOUT_SECONDS)
    timeout = httpx.Timeout(seconds, connect=min(seconds, 5.0))
    try:
        return httpx.request(method, target, headers=headers(), timeout=timeout, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ChannelError(f"Graph API unreachable: {type(exc).__name__}", "network") from exc
    except httpx.HTTPError as exc:
        # Read / write timeout or a dropped connection after the request left: Meta may have accepted it.
        raise ChannelError(f"no answer from the Graph API: {type(exc).__name__}", "timeout", ambiguous=True) from exc

"""Safe download of inbound media from a provider's own hosts.

A webhook names the URL to fetch, so a forged or compromised payload could point us at the cloud metadata
service (169.254.169.254), the database port on localhost or any other internal address. `media_fetch`
therefore checks, before any byte is sent and again on every redirect hop:

- the scheme is https (plain http only for the configured provider base URL, i.e. a local emulator);
- the host is on the provider's allow-list (`"api.twilio.com"` exact, `".twiliocdn.com"` any subdomain);
- every address the host resolves to is public, unless the URL is the configured base URL's own host and
  port (tests run emulators on 127.0.0.1; an attacker's `http://127.0.0.1:5432/` is still refused);
- the body is streamed and abandoned past `max_bytes`.

Residual risk, accepted: the name is resolved again by the HTTP client when it connects (DNS rebinding). The
allow-listed names belong to the providers, so exploiting that needs control of their DNS.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings

from .base import ChannelError

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def host_allowed(host: str, allowed_hosts: set[str] | frozenset[str]) -> bool:
    """Exact match, or suffix match for entries with a leading dot (".fbcdn.net" ⊃ "scontent.xx.fbcdn.net")."""
    host = host.lower().rstrip(".")
    for entry in allowed_hosts:
        entry = entry.lower()
        if entry.startswith("."):
            if host.endswith(entry) and len(host) > len(entry):
                return True
        elif host == entry:
            return True
    return False


def _address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _refuse(message: str) -> ChannelError:
    logger.warning("media download refused: %s", message)
    return ChannelError(message, "media_refused", permanent=True)


def _check_url(url: str, *, allowed_hosts: set[str] | frozenset[str], trusted_origin: tuple[str, str, int] | None):
    scheme, host, port = _origin(url)
    if not host:
        raise _refuse("media URL has no host")
    trusted = trusted_origin is not None and (scheme, host, port) == trusted_origin
    if scheme != "https" and not trusted:
        raise _refuse(f"media URL scheme {scheme or '(none)'} is not https")
    if not trusted and not host_allowed(host, allowed_hosts):
        raise _refuse(f"media host {host} is not one of the provider's hosts")
    if trusted:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ChannelError(f"media host {host} does not resolve: {exc}", "media_unreachable") from exc
    for info in infos:
        address = str(info[4][0])
        if not _address_is_public(address):
            raise _refuse(f"media host {host} resolves to a non-public address {address}")


def media_fetch(
    *,
    url: str,
    allowed_hosts: set[str] | frozenset[str],
    auth: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
    max_bytes: int,
    trusted_base_url: str = "",
    timeout: float | None = None,
) -> tuple[bytes, str]:
    """Download `url` → (content, mime type without parameters).

    `trusted_base_url` is the provider base URL from settings (TWILIO_API_BASE_URL, META_GRAPH_BASE_URL): its
    exact scheme, host and port may be http and private (a local emulator). `auth` / `headers` go only to the
    first host; a redirect to another host is followed without them (as browsers do), and only if allowed.

    Raises ChannelError: permanent with code "media_refused" (URL not allowed) or "media_too_large"; a
    provider 4xx is permanent, 5xx / network errors transient.
    """
    trusted_origin = _origin(trusted_base_url) if trusted_base_url else None
    timeout = timeout if timeout is not None else settings.CHANNEL_HTTP_TIMEOUT_SECONDS
    first_origin = _origin(url)
    current = url
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), follow_redirects=False) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            _check_url(current, allowed_hosts=allowed_hosts, trusted_origin=trusted_origin)
            same_origin = _origin(current) == first_origin
            try:
                with client.stream(
                    "GET",
                    current,
                    auth=auth if same_origin else None,
                    headers=(headers or {}) if same_origin else {},
                ) as response:
                    if response.status_code in REDIRECT_STATUSES:
                        location = response.headers.get("location")
                        if not location:
                            raise ChannelError("media redirect without Location", "media_refused", permanent=True)
                        current = urljoin(current, location)
                        continue
                    if response.status_code >= 400:
                        raise ChannelError(
                            f"media download answered HTTP {response.status_code}",
                            f"media_http_{response.status_code}",
                            permanent=response.status_code < 500 and response.status_code != 429,
                        )
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > max_bytes:
                        raise ChannelError(
                            f"media is {declared} bytes, over the {max_bytes}-byte cap",
                            "media_too_large",
                            permanent=True,
                        )
                    chunks: list[bytes] = []
                    received = 0
                    for chunk in response.iter_bytes():
                        received += len(chunk)
                        if received > max_bytes:
                            raise ChannelError(
                                f"media exceeds the {max_bytes}-byte cap", "media_too_large", permanent=True
                            )
                        chunks.append(chunk)
                    mime = response.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
                    return b"".join(chunks), mime
            except httpx.HTTPError as exc:
                raise ChannelError(f"media download failed: {type(exc).__name__}", "media_unreachable") from exc
    raise _refuse(f"more than {MAX_REDIRECTS} redirects")

"""The shared safe download: allow-list, address checks, trusted emulator origin, redirects, cap."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from apps.channels.base import ChannelError
from apps.channels.media import host_allowed, media_fetch
from tests.emulators.base import Emulator, RecordedRequest, Reply


class _Files(Emulator):
    name = "files"

    def route(self, request: RecordedRequest) -> Reply:
        if request.path == "/file":
            return Reply(200, b"0123456789", {"Content-Type": "image/png; charset=binary"})
        if request.path == "/chunked":
            # No Content-Length-based refusal possible: the cap must hold while streaming.
            return Reply(200, b"y" * 5000, {"Content-Type": "application/pdf"})
        if request.path == "/redirect":
            return Reply(302, b"", {"Location": request.query["to"][0]})
        return Reply(404, b"nope")


@pytest.fixture
def files():
    server = _Files().start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("lookaside.fbsbx.com", True),
        ("scontent.xx.fbcdn.net", True),
        ("fbcdn.net", False),  # the dotted entry matches subdomains only
        ("evilfbcdn.net", False),
        ("fbcdn.net.evil.com", False),
        ("LOOKASIDE.FBSBX.COM", True),
    ],
)
def test_host_allow_list_matches_exact_names_and_dotted_suffixes(host, allowed):
    assert host_allowed(host, {"lookaside.fbsbx.com", ".fbcdn.net"}) is allowed


def test_trusted_base_url_may_be_plain_http_on_loopback(files):
    content, mime = media_fetch(
        url=f"{files.base_url}/file", allowed_hosts=set(), max_bytes=100, trusted_base_url=files.base_url
    )
    assert (content, mime) == (b"0123456789", "image/png")


def test_allowed_host_resolving_to_a_private_address_is_refused(files):
    # "localhost" is on the allow-list here, yet resolves to 127.0.0.1: refused before connecting.
    with pytest.raises(ChannelError) as caught:
        media_fetch(url=f"https://localhost:{files.port}/file", allowed_hosts={"localhost"}, max_bytes=100)
    assert "non-public" in caught.value.message
    assert files.requests == [] and files.refused == []


def test_same_host_on_another_port_is_not_trusted(files):
    with pytest.raises(ChannelError) as caught:
        media_fetch(
            url="http://127.0.0.1:5432/", allowed_hosts={"127.0.0.1"}, max_bytes=100, trusted_base_url=files.base_url
        )
    assert caught.value.code == "media_refused"


def test_streamed_body_past_the_cap_is_abandoned(files):
    with pytest.raises(ChannelError) as caught:
        media_fetch(
            url=f"{files.base_url}/chunked", allowed_hosts=set(), max_bytes=4096, trusted_base_url=files.base_url
        )
    assert caught.value.code == "media_too_large"


def test_redirect_to_metadata_service_is_refused(files):
    url = f"{files.base_url}/redirect?" + urlencode({"to": "http://169.254.169.254/latest/meta-data/"})
    with pytest.raises(ChannelError) as caught:
        media_fetch(url=url, allowed_hosts=set(), max_bytes=100, trusted_base_url=files.base_url)
    assert caught.value.code == "media_refused"


def test_provider_error_status_is_reported(files):
    with pytest.raises(ChannelError) as caught:
        media_fetch(
            url=f"{files.base_url}/missing", allowed_hosts=set(), max_bytes=100, trusted_base_url=files.base_url
        )
    assert (caught.value.code, caught.value.permanent) == ("media_http_404", True)

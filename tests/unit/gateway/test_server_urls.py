"""A user's own tracker server address: what is kept and what is refused."""

from __future__ import annotations

import pytest

from scrobble_gateway.connect.server_urls import refused_server_address


@pytest.mark.parametrize(
    "url",
    [
        "http://192.168.1.20:42010",
        "https://maloja.example.org",
        "http://localhost:42010/",
        "http://[::1]:42010",
        "https://music.example.org/maloja",
    ],
)
def test_servers_people_run_are_kept(url: str) -> None:
    assert refused_server_address(url) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://files.example.org", "http"),
        ("maloja.example.org", "http"),
        ("http://", "host"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0:42010", "unspecified"),
        ("http://user:pw@maloja.example.org", "password"),
        ("http://maloja.example.org/?next=x", "query"),
        ("http://maloja.example.org:port", "parse"),
        ("http://maloja.example.org\uff0fx", "ASCII"),  # a fullwidth solidus
        ("http://[x", "parse"),
        ("http://" + "a" * 2050, "ASCII"),
    ],
)
def test_what_no_server_is_gets_a_reason(url: str, why: str) -> None:
    reason = refused_server_address(url)
    assert reason is not None
    assert why in reason

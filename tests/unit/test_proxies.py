"""The proxy skycheck's direct transport uses is the one kubectl would use.

The expectations in data/proxy_cases.jsonl were produced by Go's own rules
(golang.org/x/net/http/httpproxy v0.57.0, the code behind kubectl's
``http.ProxyFromEnvironment``) with data/proxy_oracle.go, not written by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skycheck.proxies import display, proxy_for

CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "proxy_cases.jsonl").read_text().splitlines()
]


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c['server']}|{c['no_proxy']}|{c['proxy']}" for c in CASES]
)
def test_environment_proxy_matches_go(case):
    env = {"HTTPS_PROXY": case["proxy"], "NO_PROXY": case["no_proxy"]}
    assert proxy_for(case["server"], None, env) == case["expected"]


def test_the_oracle_table_covers_both_outcomes():
    outcomes = {c["expected"] is None for c in CASES}
    assert outcomes == {True, False}


def test_lowercase_variables_are_read_when_uppercase_ones_are_unset():
    env = {"https_proxy": "http://p:1", "no_proxy": "example.com"}
    assert proxy_for("https://a.example.com", None, env) is None
    assert proxy_for("https://other.org", None, env) == "http://p:1"
    assert proxy_for("https://other.org", None, {"HTTPS_PROXY": "http://u:2", **env}) == (
        "http://u:2"
    )


def test_http_proxy_is_not_used_for_https_servers():
    assert proxy_for("https://other.org", None, {"HTTP_PROXY": "http://p:1"}) is None


def test_kubeconfig_proxy_url_wins_over_environment_and_loopback():
    env = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "*"}
    assert proxy_for("https://127.0.0.1:6443", "http://kc:3128", env) == "http://kc:3128"
    assert proxy_for("https://127.0.0.1:6443", "kc:3128", env) == "http://kc:3128"


def test_display_drops_credentials():
    assert display("http://user:secret@proxy.example:3128") == "http://proxy.example:3128"
    assert display("https://[fd00::1]") == "https://[fd00::1]"

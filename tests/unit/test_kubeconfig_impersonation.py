"""Impersonation set in a kubeconfig user becomes kubectl's Impersonate-* headers.

The behaviour against a real API server is in tests/integration/test_kubeconfig_identity.py;
here: the header form and the kubeconfig errors, which need no server.
"""

from __future__ import annotations

import pytest
import yaml

from skycheck import kube
from tests.faults.proxy import closed_port
from tests.reliability._util import assert_one_line_error, invoke


def test_headers_follow_client_go():
    headers = kube.impersonation_headers(
        {
            "as": "bob",
            "as-uid": "1234",
            "as-groups": ["team-a", "team-b"],
            "as-user-extra": {"scopes": ["view", "edit"], "example.com/a b%": ["x"]},
        },
        "kc",
        "context c",
    )
    assert headers == [
        ("Impersonate-User", "bob"),
        ("Impersonate-Uid", "1234"),
        ("Impersonate-Group", "team-a"),
        ("Impersonate-Group", "team-b"),
        ("Impersonate-Extra-scopes", "view"),
        ("Impersonate-Extra-scopes", "edit"),
        # headerKeyEscape: bytes outside RFC 7230 tokens, and "%", are %-encoded.
        ("Impersonate-Extra-example.com%2Fa%20b%25", "x"),
    ]


def test_no_impersonation_no_headers():
    assert kube.impersonation_headers({"token": "t"}, "kc", "context c") == []


def test_a_request_that_impersonates_replaces_the_kubeconfig_impersonation():
    kubeconfig = [("Impersonate-User", "bob"), ("Impersonate-Group", "g")]
    own = [("Impersonate-User", "carol")]
    assert kube._with_impersonation(own, kubeconfig) == own
    assert kube._with_impersonation([], kubeconfig) == kubeconfig


def _write(path, user):
    path.write_text(
        yaml.safe_dump(
            {
                "current-context": "c",
                "clusters": [
                    {"name": "k", "cluster": {"server": f"https://127.0.0.1:{closed_port()}"}}
                ],
                "users": [{"name": "u", "user": {"token": "abcd1234", **user}}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            }
        )
    )
    return path


@pytest.mark.parametrize(
    ("user", "field"),
    [
        ({"as-groups": ["g"]}, "as-groups"),
        ({"as-uid": "1"}, "as-uid"),
        ({"as-user-extra": {"k": ["v"]}}, "as-user-extra"),
        ({"as": ["bob"]}, "as"),
        ({"as": "bob", "as-groups": "g"}, "as-groups"),
        ({"as": "bob", "as-user-extra": {"k": "v"}}, "as-user-extra"),
    ],
)
def test_malformed_impersonation_is_a_kubeconfig_error_naming_the_field(tmp_path, user, field):
    outcome = invoke(["--kubeconfig", _write(tmp_path / "kc", user)])
    assert_one_line_error(outcome, 2, f"context c: {field}")

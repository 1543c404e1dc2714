"""Who ``--as`` names, with the groups the API server gives that identity."""

from __future__ import annotations

import json

import pytest

from skycheck import identity
from skycheck.models import Subject
from tests.reliability._util import invoke

AUTHENTICATED, UNAUTHENTICATED = "system:authenticated", "system:unauthenticated"


def test_anonymous_is_unauthenticated_not_authenticated():
    subject = identity.user("system:anonymous", ())
    assert subject.groups == (UNAUTHENTICATED,)


def test_a_named_user_is_authenticated():
    assert identity.user("bob", ("team",)).groups == ("team", AUTHENTICATED)


def test_a_user_given_the_unauthenticated_group_is_not_also_authenticated():
    # impersonation.go adds system:authenticated unless either group is already given.
    assert identity.user("bob", (UNAUTHENTICATED,)).groups == (UNAUTHENTICATED,)


@pytest.mark.parametrize(
    ("subject", "headers"),
    [
        # What the server derives by itself needs no Impersonate-Group (and no right to it).
        (identity.user("bob", ()), ()),
        (Subject.service_account("sky-sa", "ns1"), ()),
        (identity.user("system:serviceaccount:ns1:sky-sa", ()), ()),
        # The server gives an impersonated system:anonymous system:unauthenticated itself.
        (identity.user("system:anonymous", ()), ()),
        (identity.user("system:anonymous", ("g",)), ("g", UNAUTHENTICATED)),
        (identity.user("bob", ("team",)), ("team", AUTHENTICATED)),
    ],
)
def test_impersonation_sends_groups_only_where_the_server_would_not(subject, headers):
    assert identity.impersonation_groups(subject) == headers


def test_unknown_caller_names_no_one():
    subject = identity.from_whoami("", (), "")
    assert subject.username == "" and subject.groups == ()
    assert identity.from_whoami("alice", ("g",)).username == "alice"


ANONYMOUS_VIA_AUTHENTICATED = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: everyone-admin}
subjects: [{kind: Group, name: system:authenticated, apiGroup: rbac.authorization.k8s.io}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
"""


def test_offline_anonymous_gets_no_grant_meant_for_authenticated_users(tmp_path):
    manifest = tmp_path / "rbac.yaml"
    manifest.write_text(ANONYMOUS_VIA_AUTHENTICATED)
    anonymous = invoke(
        ["--manifests", manifest, "--as", "system:anonymous", "-n", "default", "-o", "json"]
    )
    assert anonymous.code == 1, anonymous.err
    report = json.loads(anonymous.out)
    assert report["subject"]["groups"] == [UNAUTHENTICATED]
    assert all(c["decision"] == "denied" for c in report["checks"] if c["id"].startswith("core"))
    bob = invoke(["--manifests", manifest, "--as", "bob", "-n", "default", "-o", "json"])
    assert bob.code == 0, bob.err

"""Two identities' fixes, both applied with kubectl auth reconcile, grant each only its own.

Before fix names were unambiguous, SA ``x-y`` in ``N`` and SA ``x`` in ``y-N`` both got
``skycheck-x-y-N``; reconcile then merged the two ClusterRoles' rules and the two
bindings' subjects, so each account held the other's grants.
"""

from __future__ import annotations

import time

import pytest

from skycheck.fixit import build_manifest
from skycheck.models import Requirement, Subject
from tests.cluster.controlplane import ControlPlane

pytestmark = pytest.mark.cluster


def _cluster_requirement(verb: str, resource: str) -> Requirement:
    return Requirement(
        id=f"t.{resource}.{verb}",
        rule_id=f"t.{resource}",
        feature="t",
        required=True,
        verb=verb,
        group="",
        resource=resource,
        subresource="",
        namespace="",
        name="",
        why="test",
        breaks="test",
        source="code, test",
    )


def _can(cluster: ControlPlane, user: str, resource: str) -> bool:
    return cluster.can_i("list", resource, as_user=user, all_namespaces=True)


def test_reconciled_fixes_of_two_identities_stay_apart(cluster: ControlPlane, ns: str) -> None:
    other_ns = f"y-{ns}"[:63]
    cluster.create_namespace(other_ns)
    first = Subject.service_account("x-y", ns)
    second = Subject.service_account("x", other_ns)
    fixes = [
        build_manifest(first, [_cluster_requirement("list", "nodes")]),
        build_manifest(second, [_cluster_requirement("list", "persistentvolumes")]),
    ]
    try:
        for text in fixes:
            assert text is not None
            cluster.kubectl("auth", "reconcile", "-f", "-", input=text, check=True)
        deadline = time.monotonic() + 10  # the RBAC cache lags a moment behind writes
        while not (
            _can(cluster, first.username, "nodes")
            and _can(cluster, second.username, "persistentvolumes")
        ):
            assert time.monotonic() < deadline, "the fixes never took effect"
            time.sleep(0.2)
        assert not _can(cluster, first.username, "persistentvolumes")
        assert not _can(cluster, second.username, "nodes")
    finally:
        for text in fixes:
            if text:
                cluster.delete(text)
        cluster.delete_namespace(other_ns)

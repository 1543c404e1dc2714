"""The ``lab`` fixture: namespaces and an oracle on the test control plane, per module."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from skycheck import rbac
from tests.cluster.controlplane import ControlPlane
from tests.differential._lab import Lab
from tests.differential._oracle import Oracle


@pytest.fixture(scope="module")
def lab(cluster: ControlPlane) -> Iterator[Lab]:
    token = f"dx{secrets.token_hex(3)}"
    names = {"m": token, "a": f"{token}-a", "b": f"{token}-b", "c": f"{token}-c"}
    for ns in (names["a"], names["b"]):
        cluster.create_namespace(ns, labels={"skycheck-test": "true"}, exist_ok=False)
    bootstrap = frozenset(rbac.object_key(o) for o in rbac.bootstrap_policy().objects)
    oracle = Oracle(cluster)
    lab = Lab(oracle, names, bootstrap)
    try:
        lab.open()
        yield lab
    finally:
        # The probes and whatever an interrupted example left behind, then the namespaces;
        # wait until the bootstrap aggregated roles are back to normal before other tests run.
        lab.close()
        for ns in (names["a"], names["b"]):
            cluster.delete_namespace(ns)
        lab.settle_bootstrap()
        oracle.close()

"""What resourceNames can restrict on RBAC writes, shown on the real apiserver.

The catalogue restricts SkyPilot's named requests to the objects it touches
(catalogue.request_names): escalate checked by name covers a patch of that role but not a
create (RoleEscalationAuthorized uses the request's name, which a create lacks), and a
fix's named patch grant allows exactly the named role.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest

from skycheck.catalogue import bind, load_catalogue
from skycheck.fixit import build_manifest, escalation_routes
from skycheck.models import Subject
from tests.cluster.controlplane import ControlPlane

pytestmark = pytest.mark.cluster

RBAC = "rbac.authorization.k8s.io"


def _role(ns: str, name: str, rules: str) -> str:
    return (
        f"apiVersion: {RBAC}/v1\nkind: Role\n"
        f"metadata: {{name: {name}, namespace: {ns}}}\nrules: {rules}\n"
    )


def _as(
    cluster: ControlPlane, user: str, *args: str, text: str | None = None
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(*args, f"--as={user}", input=text)


def _eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10  # the RBAC cache lags a moment behind writes
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_escalate_by_name_covers_patch_but_not_create(cluster: ControlPlane, ns: str) -> None:
    user = f"escalator-{ns}"
    grant = _role(
        ns,
        "grant",
        f'[{{apiGroups: ["{RBAC}"], resources: [roles], verbs: [create, get]}},'
        f' {{apiGroups: ["{RBAC}"], resources: [roles], resourceNames: [target],'
        " verbs: [patch, escalate]}]",
    )
    cluster.apply(grant)
    cluster.kubectl(
        "create", "rolebinding", "grant", "-n", ns, "--role=grant", f"--user={user}", check=True
    )
    _eventually(lambda: cluster.can_i("create", f"roles.{RBAC}", ns, as_user=user), "no grant")
    pods_get = '[{apiGroups: [""], resources: [pods], verbs: [get]}]'
    # Create: the escalation check asks for escalate with no name; the named grant misses.
    created = _as(cluster, user, "create", "-f", "-", text=_role(ns, "target", pods_get))
    assert created.returncode != 0
    assert "attempting to grant RBAC permissions not currently held" in created.stderr
    # Patch of the named role: escalate on "target" suffices.
    cluster.apply(_role(ns, "target", "[]"))
    patch = '{"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}'
    patched = _as(cluster, user, "patch", "role", "target", "-n", ns, "--type=merge", "-p", patch)
    assert patched.returncode == 0, patched.stderr


def test_rbac_bootstrap_fix_patches_only_skypilots_objects(cluster: ControlPlane, ns: str) -> None:
    subject = Subject.service_account("launcher", ns)
    reqs = bind(load_catalogue(), ns, ["rbac-bootstrap"], ["rbac-bootstrap"])
    namespaced = [r for r in reqs if r.namespace == ns]
    fix = build_manifest(subject, namespaced)
    assert fix is not None and "resourceNames" in fix
    assert fix.startswith("# WARNING: this fix grants rights that amount to cluster-admin")
    assert escalation_routes(namespaced)  # create bindings and escalate for creates remain
    cluster.kubectl("auth", "reconcile", "-f", "-", input=fix, check=True)
    user = subject.username
    _eventually(
        lambda: cluster.can_i(
            "patch", f"roles.{RBAC}/skypilot-service-account-role", ns, as_user=user
        ),
        "the fix never took effect",
    )
    assert not cluster.can_i("patch", f"roles.{RBAC}/other", ns, as_user=user)
    assert cluster.can_i(
        "patch", f"rolebindings.{RBAC}/skypilot-service-account-role-binding", ns, as_user=user
    )
    assert not cluster.can_i("patch", f"rolebindings.{RBAC}/other", ns, as_user=user)
    assert cluster.can_i("create", f"roles.{RBAC}", ns, as_user=user)  # cannot be named

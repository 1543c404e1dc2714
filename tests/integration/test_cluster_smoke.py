"""Smoke tests of the test control plane itself (tests/cluster), against the real apiserver.

If these fail, every other cluster test is meaningless, so they check the harness's promises:
the RBAC authorizer answers like a real cluster for SkyPilot's documented service account,
kube-controller-manager aggregated the built-in roles and deletes namespaces, token users and
service-account tokens authenticate, and the detached ``up``/``down`` CLI leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cluster.controlplane import ControlPlane

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
SKY_SA_MANIFEST = REPO / "tests" / "manifests" / "create-sky-sa.yaml"
SKY_SA = "system:serviceaccount:default:sky-sa"


@pytest.fixture(scope="module")
def sky_sa(cluster: ControlPlane) -> Iterator[str]:
    """The SkyPilot docs' create-sky-sa.yaml applied as is (it binds in fixed namespaces)."""
    # The manifest's optional ingress Role lives in ingress-nginx, which it does not create.
    cluster.create_namespace("ingress-nginx")
    cluster.apply(SKY_SA_MANIFEST)
    yield SKY_SA
    # It grants cluster-wide rights to default/sky-sa; do not leak them into later tests. It
    # also deletes the skypilot-system namespace it made: wait, or a later apply of the same
    # manifest hits "namespace is being terminated".
    cluster.delete(SKY_SA_MANIFEST, wait=True)


def test_sky_sa_manifest_grants_what_the_docs_say(cluster: ControlPlane, sky_sa: str) -> None:
    assert cluster.can_i("create", "pods", "default", as_user=sky_sa)
    assert cluster.can_i("list", "nodes", as_user=sky_sa)
    assert not cluster.can_i("delete", "nodes", as_user=sky_sa)
    # Subresources go through --subresource ("pods/exec" would mean a pod named exec).
    assert cluster.can_i("create", "pods", "default", as_user=sky_sa, subresource="exec")
    # The Role is namespaced: nothing in another namespace beyond the ClusterRole's pod reads.
    assert not cluster.can_i("create", "pods", "kube-system", as_user=sky_sa)
    assert cluster.can_i("get", "pods", "kube-system", as_user=sky_sa)
    assert cluster.can_i("create", "daemonsets.apps", "skypilot-system", as_user=sky_sa)
    assert cluster.can_i("watch", "services", "ingress-nginx", as_user=sky_sa)


def test_sky_sa_token_authenticates(cluster: ControlPlane, sky_sa: str, tmp_path: Path) -> None:
    # Same answers with the SA's own TokenRequest token instead of impersonation.
    kubeconfig = cluster.kubeconfig_for_service_account(
        tmp_path / "sky-sa.kubeconfig", "default", "sky-sa", create=False
    )
    whoami = cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig, check=True)
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == sky_sa
    assert cluster.can_i("list", "nodes", kubeconfig=kubeconfig)
    assert not cluster.can_i("delete", "nodes", kubeconfig=kubeconfig)


def test_builtin_edit_role_is_aggregated(cluster: ControlPlane) -> None:
    # The apiserver alone leaves admin/edit/view with `rules: null`; kcm fills them.
    for name in ("admin", "edit", "view"):
        role = cluster.get(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}")
        assert role is not None
        assert role.get("rules"), f"ClusterRole {name} has no rules: aggregation did not run"


def test_token_users_authenticate(
    cluster: ControlPlane, ns: str, user_kubeconfig: Callable[[str], Path]
) -> None:
    alice = user_kubeconfig("alice")
    whoami = cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=alice, check=True)
    info = json.loads(whoami.stdout)["status"]["userInfo"]
    assert info["username"] == "alice"
    assert "skycheck:testers" in info["groups"]
    assert not cluster.can_i("list", "pods", ns, kubeconfig=alice)
    # Granting through the group subject works: the RBAC authorizer is really in the loop.
    cluster.kubectl(
        "create", "rolebinding", "testers-view", "-n", ns,
        "--clusterrole=view", "--group=skycheck:testers", check=True,
    )  # fmt: skip
    assert cluster.can_i("list", "pods", ns, kubeconfig=alice)
    assert not cluster.can_i("list", "pods", ns, as_user="bob")


def test_namespace_deletion_completes(cluster: ControlPlane) -> None:
    # Needs kcm's namespace-controller; without it the namespace stays Terminating forever.
    cluster.create_namespace("smoke-delete-me")
    cluster.create_service_account("smoke-delete-me", "x")
    cluster.delete_namespace("smoke-delete-me", wait=True, timeout=60)


def _run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.cluster", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and int(entry.name) != os.getpid():
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_up_down_cli_leaves_no_process(cluster: ControlPlane, tmp_path: Path) -> None:
    # `cluster` only to guarantee the binaries are built, so `up` measures a warm start.
    state_dir = tmp_path / "up"
    started = time.monotonic()
    up = _run_cli("up", "--dir", str(state_dir))
    elapsed = time.monotonic() - started
    try:
        assert up.returncode == 0, up.stderr
        lines = up.stdout.splitlines()
        assert len(lines) == 1, up.stdout
        info = json.loads(lines[0])
        assert set(info) == {"kubeconfig", "kubectl", "server"}
        assert info["server"].startswith("https://127.0.0.1:")
        # Processes survive the `up` command itself.
        listing = subprocess.run(
            [info["kubectl"], "--kubeconfig", info["kubeconfig"], "auth", "can-i", "--list"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert listing.returncode == 0, listing.stderr
        assert "*.*" in listing.stdout  # system:masters can do everything
        recorded = json.loads((state_dir / "pids.json").read_text())
        assert {p["name"] for p in recorded} == {
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
        }
        # Warm start budget is 30 s; allow slack for a loaded CI box before failing.
        assert elapsed < 60, f"warm `up` took {elapsed:.1f}s"
    finally:
        down = _run_cli("down", "--dir", str(state_dir), timeout=120)
    assert down.returncode == 0, down.stderr
    assert _processes_mentioning(str(state_dir)) == []
    assert not (state_dir / "pids.json").exists()

"""A missing ingress-nginx is a precondition, never RBAC to create.

The session's control plane has ingress-nginx (other tests put Roles there), so the
fault proxy answers 404 for it alone: the one answer a real server gives for a
namespace nobody installed, shown on demand without deleting a shared namespace.
"""

from __future__ import annotations

import pytest
import yaml

from tests.faults.proxy import status, when
from tests.integration._scenarios import NAMESPACE_ADMIN
from tests.reliability._util import invoke, reports, write_kubeconfig

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module", autouse=True)
def system_namespaces(cluster):  # type: ignore[no-untyped-def]
    for name in ("skypilot-system", "ingress-nginx"):
        cluster.create_namespace(name, exist_ok=True)


def test_missing_ingress_namespace_fails_ingress_and_gets_no_rbac(
    cluster, fault_proxy, ns, user_kubeconfig, proxy_pki, tmp_path
):
    cluster.apply(NAMESPACE_ADMIN.format(ns=ns))  # bob: admin of ns, nothing in ingress-nginx
    token = yaml.safe_load(user_kubeconfig("bob").read_text())["users"][0]["user"]["token"]
    proxy = fault_proxy(
        when(
            lambda r: (
                r.method == "GET" and r.path.split("?")[0] == "/api/v1/namespaces/ingress-nginx"
            ),
            status(404, message='namespaces "ingress-nginx" not found'),
        )
    )
    kubeconfig = write_kubeconfig(
        tmp_path / "bob.proxy", proxy.url, token=token, ca=proxy_pki.ca_cert, namespace=ns
    )
    fix = tmp_path / "fix.yaml"
    args = ["--kubeconfig", str(kubeconfig), "-n", ns, "-f", "ingress", "--fix", str(fix)]
    outcome = invoke([*args, "-o", "json"])
    (report,) = reports(outcome)
    pre = {p["namespace"]: p for p in report["preconditions"]}
    assert pre["ingress-nginx"]["state"] == "missing"
    assert pre["ingress-nginx"]["owner"] == "the ingress controller (ingress-nginx)"
    (check,) = [c for c in report["checks"] if c["precondition"]]
    assert check["id"] == "ingress.namespace-ingress-nginx.exists"
    assert check["decision"] == "denied"
    assert "install the ingress controller (ingress-nginx) first" in check["reason"]
    assert {f["name"]: f["status"] for f in report["features"]}["ingress"] == "fail"
    assert outcome.code == 1
    # The checks in ingress-nginx were asked (and bob holds none of them), yet the fix
    # neither grants anything there nor creates the namespace.
    denied_there = [
        c for c in report["checks"] if c["namespace"] == "ingress-nginx" and not c["precondition"]
    ]
    assert denied_there and all(c["decision"] == "denied" for c in denied_there)
    docs = [d for d in yaml.safe_load_all(fix.read_text()) if d] if fix.exists() else []
    assert not [d for d in docs if d["metadata"].get("namespace") == "ingress-nginx"]
    assert not [d for d in docs if d["kind"] == "Namespace"]
    assert "ingress-nginx" not in (report["fix"] or "")

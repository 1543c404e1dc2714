"""An audit across a cluster offline says what each identity's own live check says.

A small world is applied to the control plane: the docs' account, a reader (``view``) and an
account with ``admin`` in the namespace. Offline, ``--service-accounts-of NS`` over the same
manifests audits every account of the namespace; live, each is checked on its own (``--sa``,
as the admin, who may read the cluster's RBAC objects). Their checks' decisions and their
excess must be the same, identity by identity.
"""

from __future__ import annotations

import json

import pytest
import yaml

from skycheck.cli import run
from tests.integration._scenarios import scenario

pytestmark = pytest.mark.cluster

VERSION = ["--skypilot-version", "0.14.1", "--fail-on", "never"]


def _extra(ns: str) -> str:
    out = []
    for name, role in (("reader", "view"), ("boss", "admin")):
        out.append(f"""\
apiVersion: v1
kind: ServiceAccount
metadata: {{name: {name}, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: {name}, namespace: {ns}}}
subjects:
- {{kind: ServiceAccount, name: {name}, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}
""")
    return "---\n".join(out)


def _json(args: list[str], capsys) -> dict:
    code = run(args)
    out = capsys.readouterr().out
    assert code in (0, 1), out[-2000:]
    return json.loads(out)


def _decisions(report: dict) -> dict[str, str]:
    return {c["id"]: c["decision"] for c in report["checks"] if not c["precondition"]}


def test_offline_audit_agrees_with_each_live_check(
    cluster, ns, capsys, tmp_path, system_namespaces
):
    text = scenario("docs", ns) + "\n---\n" + _extra(ns)
    # Objects with fixed names outside the test's namespace (the docs' Role in
    # skypilot-system) are shared with other tests, which may have changed them: start them
    # afresh, so the live cluster holds exactly what the offline audit reads.
    for doc in yaml.safe_load_all(text):
        where = (doc or {}).get("metadata", {}).get("namespace")
        if doc and where != ns:
            args = ["delete", doc["kind"], doc["metadata"]["name"], "--ignore-not-found"]
            cluster.kubectl(*args, *(["-n", where] if where else []), check=True)
    cluster.apply(text)
    path = tmp_path / "world.yaml"
    path.write_text(text)
    audit = _json(
        ["--manifests", str(path), "--service-accounts-of", ns, *VERSION, "-o", "json"], capsys
    )
    names = [r["subject"]["name"] for r in audit["reports"]]
    assert names == ["boss", "default", "reader", "sky-sa"]
    for report in audit["reports"]:
        account = f"{ns}:{report['subject']['name']}"
        live = _json(
            [
                "--kubeconfig",
                str(cluster.admin_kubeconfig),
                "--sa",
                account,
                "-n",
                ns,
                "--excess",
                *VERSION,
                "-o",
                "json",
            ],
            capsys,
        )
        assert live["excessSummary"]["source"] == "rbac-objects", account
        assert _decisions(live) == _decisions(report), account
        assert live["excess"] == report["excess"], account
    # Who can run SkyPilot here: the docs' account alone (admin in the namespace lists no nodes).
    core = {
        r["subject"]["name"]: next(f["status"] for f in r["features"] if f["name"] == "core")
        for r in audit["reports"]
    }
    assert core == {"boss": "fail", "default": "fail", "reader": "fail", "sky-sa": "pass"}

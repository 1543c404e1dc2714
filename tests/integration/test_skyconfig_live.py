"""skycheck with ~/.sky/config.yaml on the real apiserver: every allowed context, each identity."""

from __future__ import annotations

import json

import pytest
import yaml

from skycheck.cli import run
from tests.integration._scenarios import NAMESPACE_ADMIN, scenario

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("system_namespaces")]


def _two_contexts(source, target):
    """The kubeconfig ``source`` with its one context cloned as ctx-a and ctx-b."""
    data = yaml.safe_load(source.read_text())
    ctx = data["contexts"][0]
    data["contexts"] = [{"name": n, "context": dict(ctx["context"])} for n in ("ctx-a", "ctx-b")]
    data["current-context"] = "ctx-a"
    target.write_text(yaml.safe_dump(data))
    return target


def _run(capsys, args):
    code = run(args)
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err


def test_every_allowed_context_and_each_identity(cluster, ns, tmp_path, capsys):
    for name in ("skypilot-system", "ingress-nginx"):
        cluster.create_namespace(name, exist_ok=True)
    cluster.apply(scenario("docs", ns))
    kubeconfig = _two_contexts(cluster.admin_kubeconfig, tmp_path / "kc")
    sky = tmp_path / "config.yaml"
    sky.write_text(
        f"kubernetes:\n  allowed_contexts: [ctx-a, ctx-b, gone]\n"
        f"  remote_identity: sky-sa\n  namespace: {ns}\n"
    )
    code, doc, err = _run(
        capsys, ["--kubeconfig", str(kubeconfig), "--sky-config", str(sky), "-o", "json"]
    )
    pairs = [(r["context"], r["subject"]["kind"], r["subject"]["name"]) for r in doc["reports"]]
    assert [p[0] for p in pairs] == ["ctx-a", "ctx-a", "ctx-b", "ctx-b"]
    assert [p[2] for p in pairs][1::2] == ["sky-sa", "sky-sa"]
    assert all(r["namespace"] == ns for r in doc["reports"])
    assert "gone, not in the kubeconfig" in err and err.count("gone, not in") == 1
    assert code == 0, err


def test_default_identity_requires_rbac_bootstrap_of_the_caller_only(
    cluster, ns, user_kubeconfig, tmp_path, capsys
):
    cluster.apply(NAMESPACE_ADMIN.format(ns=ns))
    kubeconfig = user_kubeconfig("bob")
    sky = tmp_path / "config.yaml"
    sky.write_text(f"kubernetes:\n  namespace: {ns}\n")
    code, doc, _ = _run(
        capsys, ["--kubeconfig", str(kubeconfig), "--sky-config", str(sky), "-o", "json"]
    )
    caller, account = doc["reports"]
    assert caller["subject"]["name"] == "bob"
    assert {f["name"]: f["required"] for f in caller["features"]}["rbac-bootstrap"] is True
    assert account["subject"]["name"] == "skypilot-service-account"
    assert not any(f["required"] for f in account["features"])
    assert account["verdict"] == "pass"  # it does not exist yet, and never gates
    assert code == 1  # bob cannot create cluster roles: the launch would 403


def test_no_sky_config_keeps_the_single_caller_report(cluster, tmp_path, capsys, monkeypatch):
    sky = tmp_path / "config.yaml"
    sky.write_text("kubernetes:\n  remote_identity: sky-sa\n")
    monkeypatch.setenv("SKYPILOT_CONFIG", str(sky))
    args = ["--kubeconfig", str(cluster.admin_kubeconfig), "-o", "json"]
    _, with_config, _ = _run(capsys, args)
    _, without, _ = _run(capsys, [*args, "--no-sky-config"])
    assert len(with_config["reports"]) == 2
    assert "reports" not in without and without["subject"]["name"]


def test_fix_for_two_identities_of_one_context_shares_its_file(
    cluster, ns, user_kubeconfig, tmp_path, capsys
):
    cluster.apply(NAMESPACE_ADMIN.format(ns=ns))
    sky = tmp_path / "config.yaml"
    sky.write_text(f"kubernetes:\n  namespace: {ns}\n")
    fix = tmp_path / "fix.yaml"
    args = ["--kubeconfig", str(user_kubeconfig("bob")), "--sky-config", str(sky)]
    code, _, _ = _run(capsys, [*args, "--fix", str(fix), "-o", "json"])
    written = list(tmp_path.glob("fix*.yaml"))
    assert len(written) == 1 and "bob" in written[0].read_text()
    assert code == 1


def _merged_kubeconfig(admin, sa, target):
    """Contexts: admin, a service-account token user, and one that cannot be reached."""
    a, s = yaml.safe_load(admin.read_text()), yaml.safe_load(sa.read_text())
    clusters = [
        {"name": "real", "cluster": a["clusters"][0]["cluster"]},
        {"name": "dead", "cluster": {"server": "https://127.0.0.1:9"}},
    ]
    users = [
        {"name": "admin", "user": a["users"][0]["user"]},
        {"name": "sa", "user": s["users"][0]["user"]},
    ]
    contexts = [
        {"name": "admin", "context": {"cluster": "real", "user": "admin"}},
        {"name": "sky-sa", "context": {"cluster": "real", "user": "sa"}},
        {"name": "unreachable", "context": {"cluster": "dead", "user": "admin"}},
    ]
    target.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": clusters,
                "users": users,
                "contexts": contexts,
                "current-context": "admin",
            }
        )
    )
    return target


def test_all_contexts_checks_each_and_an_unreachable_one_is_unknown(
    cluster, ns, sa_kubeconfig, tmp_path, capsys
):
    cluster.apply(scenario("docs", ns))
    kubeconfig = _merged_kubeconfig(
        cluster.admin_kubeconfig, sa_kubeconfig("sky-sa"), tmp_path / "kc"
    )
    code = run(
        [
            "--kubeconfig",
            str(kubeconfig),
            "--all-contexts",
            "-n",
            ns,
            "-o",
            "json",
            "--timeout",
            "20",
        ]
    )
    out = capsys.readouterr()
    doc = json.loads(out.out)
    by_context = {r["context"]: r for r in doc["reports"]}
    assert set(by_context) == {"admin", "sky-sa", "unreachable"}
    assert by_context["admin"]["verdict"] == "pass"
    assert by_context["sky-sa"]["subject"]["username"] == f"system:serviceaccount:{ns}:sky-sa"
    assert by_context["sky-sa"]["verdict"] == "pass"
    assert by_context["unreachable"]["verdict"] == "unknown"
    assert all(c["decision"] == "unknown" for c in by_context["unreachable"]["checks"])
    assert doc["verdict"] == "unknown" and code == 3
    assert "unreachable" in out.err


def test_table_shows_one_summary_line_per_context(cluster, ns, sa_kubeconfig, tmp_path, capsys):
    cluster.apply(scenario("docs", ns))
    kubeconfig = _merged_kubeconfig(
        cluster.admin_kubeconfig, sa_kubeconfig("sky-sa"), tmp_path / "kc"
    )
    run(["--kubeconfig", str(kubeconfig), "--context", "admin", "--context", "sky-sa", "-n", ns])
    table = capsys.readouterr().out
    assert "2 reports" in table
    assert table.count("admin") >= 2 and "sky-sa" in table


def test_explain_prints_what_was_derived(cluster, ns, tmp_path, capsys):
    sky = tmp_path / "config.yaml"
    sky.write_text(f"kubernetes:\n  namespace: {ns}\n  ports: ingress\n")
    run(
        [
            "--kubeconfig",
            str(cluster.admin_kubeconfig),
            "--sky-config",
            str(sky),
            "--explain",
            "-o",
            "json",
        ]
    )
    err = capsys.readouterr().err
    assert "ports is ingress" in err or "ingress" in err
    assert "rbac-bootstrap" in err


def test_invalid_sky_config_exits_2_with_key_path(cluster, tmp_path, capsys):
    sky = tmp_path / "config.yaml"
    sky.write_text("kubernetes:\n  ports: carrier-pigeon\n")
    assert run(["--kubeconfig", str(cluster.admin_kubeconfig), "--sky-config", str(sky)]) == 2
    err = capsys.readouterr().err
    assert "kubernetes.ports" in err and len(err.strip().splitlines()) == 1

"""Contexts that point at one API server share its workers and agree with each other."""

from __future__ import annotations

import json
import threading

import pytest
import yaml

from skycheck.cli import run
from tests.integration._scenarios import scenario

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("system_namespaces")]

CONTEXTS = 6
MAX_INFLIGHT = 3


def _api_workers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("skycheck-api")}


def test_many_contexts_on_one_server_share_max_inflight_workers(cluster, ns, tmp_path, capsys):
    cluster.apply(scenario("docs", ns))
    single = cluster.write_kubeconfig(tmp_path / "one.kubeconfig", token=cluster.admin_token)
    config = yaml.safe_load(single.read_text())
    context = config["contexts"][0]
    config["contexts"] = [
        {"name": f"ctx-{i}", "context": dict(context["context"])} for i in range(CONTEXTS)
    ]
    config["current-context"] = "ctx-0"
    kubeconfig = tmp_path / "many.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    before = _api_workers()
    code = run(
        [
            "--kubeconfig",
            str(kubeconfig),
            "--all-contexts",
            "--sa",
            "sky-sa",
            "-n",
            ns,
            "--all-features",
            "--max-inflight",
            str(MAX_INFLIGHT),
            "-o",
            "json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    reports = out["reports"]
    assert code == 1  # the docs' account lacks the optional features' permissions
    assert sorted(r["context"] for r in reports) == [f"ctx-{i}" for i in range(CONTEXTS)]
    decisions = {r["context"]: [(c["id"], c["decision"]) for c in r["checks"]] for r in reports}
    first = decisions["ctx-0"]
    assert first and all(d == first for d in decisions.values())
    assert any(d == "allowed" for _, d in first) and any(d == "denied" for _, d in first)
    # One pool for the server: at most --max-inflight review threads, whatever the contexts.
    new = _api_workers() - before
    assert 1 < len(new) <= MAX_INFLIGHT

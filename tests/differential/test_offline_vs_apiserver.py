"""Differential test: skycheck's offline RBAC evaluator against the real kube-apiserver.

Hypothesis generates random worlds of Roles, ClusterRoles, RoleBindings and
ClusterRoleBindings (see ``_worlds.py`` for what they cover) and random access reviews aimed
at them. Each world is applied to the test control plane under fresh names, aggregation and
the authorizer's caches are waited for (``_oracle.py``), and every review is asked as a
SubjectAccessReview. The offline evaluator, built from the SAME objects plus the shipped
bootstrap policy (and whatever else the cluster holds), must agree on ``allowed`` for every
review. A disagreement fails with the (shrunk) world as YAML and the reviews that differ; each
one found becomes a named case in ``test_regressions.py``.

CI runs a fixed set of examples (``derandomize``): at least 2,000 reviews in about a minute.
By hand: ``SKYCHECK_DIFF_SCALE=10`` for ten times more, ``SKYCHECK_DIFF_RANDOM=1`` for new
examples each run. The figures are printed at the end (``pytest -s``).

The last tests compare whole reports: ``skycheck --manifests`` JSON against live
``skycheck --sa`` JSON after applying the same manifests, decision by decision.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from skycheck.cli import run
from tests._catalogue import full_check_count
from tests.cluster.controlplane import ControlPlane
from tests.differential._lab import Lab, key_of
from tests.differential._oracle import Query, Stats
from tests.differential._worlds import queries, worlds
from tests.integration._scenarios import ALL, scenario

# sky-sa as a launcher on SkyPilot's default identity path: every rule of the catalogue
# applies, bind/escalate and their alternatives included.
FULL = ("--remote-identity", "SERVICE_ACCOUNT")

pytestmark = pytest.mark.cluster

SCALE = max(1, int(os.environ.get("SKYCHECK_DIFF_SCALE", "1")))
DERANDOMIZE = not os.environ.get("SKYCHECK_DIFF_RANDOM")
WORLDS = 100 * SCALE
REVIEWS_PER_WORLD = 60
MIN_REVIEWS = 2_000 * SCALE


def check_world(
    lab: Lab, world: list[dict[str, Any]], reviews: list[Query], stats: Stats, n: int
) -> None:
    outcome = lab.run(world, reviews, f"{lab.names['m']}-{n}-")
    stats.examples += 1
    stats.objects += len(outcome.objects)
    stats.queries += len(outcome.asked)
    stats.allowed += sum(bool(r.get("allowed")) for r in outcome.live)
    stats.aggregated_examples += any("aggregationRule" in o for o in outcome.objects)
    differ = outcome.disagreements()
    if differ:
        stats.disagreements += differ
        raise AssertionError(
            f"{len(differ)} of {len(outcome.asked)} reviews disagree\n--- world:\n"
            f"{outcome.world_yaml()}\n--- reviews:\n  " + "\n  ".join(differ)
        )


def test_offline_evaluator_agrees_with_the_apiserver(lab: Lab) -> None:
    stats = Stats()
    counter = itertools.count()
    started = time.monotonic()

    @settings(
        max_examples=WORLDS,
        derandomize=DERANDOMIZE,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(world=worlds(), data=st.data())
    def check(world: list[dict[str, Any]], data: st.DataObject) -> None:
        reviews = data.draw(queries(world, REVIEWS_PER_WORLD), label="reviews")
        check_world(lab, world, reviews, stats, next(counter))

    try:
        check()
    finally:
        stats.seconds = time.monotonic() - started
        print(f"\ndifferential (offline vs kube-apiserver): {stats.line()}")
    assert stats.queries >= MIN_REVIEWS, stats.line()
    assert stats.allowed >= stats.queries // 10, "too few allowed reviews: the test lost its aim"


# --- whole reports: skycheck --manifests against live skycheck --sa ----------------------


def _report(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    run(args)
    out = capsys.readouterr().out
    report: dict[str, Any] = json.loads(out)
    return report


@pytest.fixture(scope="module")
def system_namespaces(cluster: ControlPlane) -> None:
    for name in ("skypilot-system", "ingress-nginx"):
        cluster.create_namespace(name, exist_ok=True)


@pytest.mark.parametrize("name", ALL)
def test_manifests_report_equals_live_report(
    cluster: ControlPlane,
    lab: Lab,
    system_namespaces: None,
    ns: str,
    name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Apply a scenario, then check the same account live and offline: every decision equal.

    The offline run gets the scenario's file plus the cluster's other objects (other tests'
    leftovers, dumped as manifests), so both sides see the same RBAC.
    """
    manifest = scenario(name, ns)
    cluster.apply(manifest)
    try:
        _compare_reports(cluster, lab, ns, manifest, tmp_path, capsys)
    finally:  # the RBAC objects only: the docs' manifest also holds a shared Namespace
        rbac_docs = [d for d in yaml.safe_load_all(manifest) if d and "rbac" in d["apiVersion"]]
        cluster.delete(yaml.safe_dump_all(rbac_docs))


def _compare_reports(
    cluster: ControlPlane,
    lab: Lab,
    ns: str,
    manifest: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sentinels = lab.oracle.sentinels(f"{ns}-", ns)
    try:
        lab.settle_bootstrap()
        lab.oracle.sync(sentinels)
        live = _report(
            [
                "--kubeconfig",
                str(cluster.admin_kubeconfig),
                "--sa",
                "sky-sa",
                "-n",
                ns,
                "--all-features",
                *FULL,
                "-o",
                "json",
            ],
            capsys,
        )
    finally:
        lab.oracle.delete(sentinels)
    (tmp_path / "scenario.yaml").write_text(manifest)
    touched = {c["namespace"] for c in live["checks"] if c["namespace"]}
    applied = {key_of(o) for o in yaml.safe_load_all(manifest) if o and "rbac" in o["apiVersion"]}
    others = [
        o
        for o in lab.oracle.live_objects(sorted(touched))
        if key_of(o) not in lab.bootstrap_keys and key_of(o) not in applied
    ]
    (tmp_path / "zz-cluster.yaml").write_text(yaml.safe_dump_all(others))
    offline = _report(
        [
            "--manifests",
            str(tmp_path),
            "--sa",
            "sky-sa",
            "-n",
            ns,
            "--all-features",
            *FULL,
            "-o",
            "json",
        ],
        capsys,
    )
    assert live["method"] == "SubjectAccessReview" and offline["mode"] == "offline"

    def decisions(report: dict[str, Any]) -> dict[tuple[str, str], str]:
        return {(c["id"], c["namespace"]): c["decision"] for c in report["checks"]}

    assert len(live["checks"]) >= full_check_count()
    assert decisions(offline) == decisions(live)
    assert offline["verdict"] == live["verdict"]

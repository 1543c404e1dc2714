"""Closed loop against real SkyPilot: skycheck's fix is enough, and every fatal check of it
is needed; skycheck's verdict predicts SkyPilot's outcome on random RBAC worlds.

CI runs the cases in ``CI_CASES`` for the CI SkyPilot version (sufficiency for each,
necessity for the short ones, a few random worlds), ``CI_NIGHTLY_CASES`` for the nightly and
``CI_OLDER_CASES`` (sufficiency) for each older release.
``SKYCHECK_LAB_FULL=1`` runs every case, necessity for all of them and more worlds, for
every proven SkyPilot version (``make lab``; figures in docs/skypilot-lab.md).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from skycheck.cli import run as skycheck
from tests.skypilot import closed_loop as cl
from tests.skypilot import in_pod, venvs
from tests.skypilot.conftest import CI_VERSION
from tests.skypilot.lab import Identity, Lab
from tests.skypilot.runner import OPERATIONS, Outcome, run_operation

DOCS_MANIFEST = Path(__file__).resolve().parents[1] / "manifests" / "create-sky-sa.yaml"

pytestmark = pytest.mark.skypilot

FULL = os.environ.get("SKYCHECK_LAB_FULL") == "1"
VERSIONS = tuple(venvs.VERSIONS) if FULL else (CI_VERSION,)
# ports-loadbalancer and autodown go past the first exec (SkyPilot's own post-exec calls).
CI_CASES = ("check", "show-gpus", "volumes", "launch", "ports-loadbalancer", "autodown")
CI_NECESSITY = ("check",)
CASES = tuple(cl.CASES) if FULL else CI_CASES
WORLDS = 24 if FULL else 3
# CI also runs three of the nightly's cases: its two shortest and a default-identity launch.
NIGHTLY = next(v for v in venvs.VERSIONS if v.startswith("nightly-"))
CI_NIGHTLY_CASES = ("check", "show-gpus", "launch")
# And, per older release line, a smoke: `sky check` (a launch needs its necessity runs:
# without them the inventory lists no tolerated 403, and `sky down` meets degrading ones).
OLDER = tuple(v for v in venvs.VERSIONS if v not in (CI_VERSION, NIGHTLY))
CI_OLDER_CASES = ("check",)


def _sufficiency_params() -> list[tuple[str, str]]:
    params = [(v, n) for v in VERSIONS for n in CASES]
    if not FULL:
        params += [(NIGHTLY, n) for n in CI_NIGHTLY_CASES]
        params += [(v, n) for v in OLDER for n in CI_OLDER_CASES]
    return params


@pytest.fixture(scope="module")
def lab(skypilot_lab: Lab) -> Lab:
    for version in venvs.VERSIONS:
        venvs.ensure_venv(version)
    return skypilot_lab


@pytest.mark.parametrize(("version", "name"), _sufficiency_params())
def test_the_fix_is_enough(lab, version, name, tmp_path: Path, capsys):
    """From nothing: check, apply the fix, run SkyPilot: as far as cluster-admin, no 403
    that the inventory does not list as tolerated."""
    case = cl.CASES[name]
    if reason := cl.unjudged(version, case.scenario):
        pytest.skip(reason)
    who = cl.new_identity(lab, "suff")
    fix = tmp_path / "fix.yaml"
    code, report = cl.check(lab, version, case, who, capsys, fix=fix)
    assert code == 1 and fix.exists(), report["warnings"]
    proven = cl.catalogue_version(version)
    assert report["skypilot"] == {
        "version": proven,
        "provenBy": proven,
        "proven": True,
        "source": "flag",
    }
    cl.apply_fix(lab, fix)
    cl.settle(lab, version, case, who, capsys)
    run = cl.run_case(lab, version, case, who)
    assert cl.unexpected_403s(version, case, run) == [], run.tail
    assert cl.got_as_far(version, case, run), (run.reason, run.tail)


def _necessity_params() -> list[tuple[str, str]]:
    names = CASES if FULL else CI_NECESSITY
    params = [(v, n) for v in VERSIONS for n in names]
    return params if FULL else [*params, (NIGHTLY, "check")]


@pytest.mark.parametrize(("version", "name"), _necessity_params())
def test_every_fatal_check_of_the_fix_is_needed(lab, version, name, capsys):
    """Grant the fix's checks but one: SkyPilot must be refused exactly that one and stop.

    Only checks the inventory found fatal for this operation are dropped: a feature serves
    several operations (core: sky check and sky launch; listing nodes is fatal to sky check
    and tolerated by show-gpus), and the inventory's necessity runs cover every scenario."""
    case = cl.CASES[name]
    if reason := cl.unjudged(version, case.scenario):
        pytest.skip(reason)
    probe = cl.new_identity(lab, "probe")
    code, report = cl.check(lab, version, case, probe, capsys)
    assert code == 1
    checks = cl.gating_checks(report)
    assert checks
    unnoticed = []
    dropped_count = 0
    for dropped in checks:
        if dropped.get("precondition") or not cl.fatal_here(
            version, case, dropped, probe.namespace
        ):
            continue
        dropped_count += 1
        who = cl.new_identity(lab, "nec")
        for namespace in cl.namespaces_of(report):
            lab.cp.create_namespace(namespace, exist_ok=True)
        cl.grant_checks(lab, who, [c for c in checks if c is not dropped], probe)
        run = cl.run_case(lab, version, case, who)
        refused = [
            r
            for r in run.forbidden
            if (r.verb, r.group, r.resource, r.subresource)
            == (dropped["verb"], dropped["group"], dropped["resource"], dropped["subresource"])
        ]
        if not refused or cl.reached(version, case, run):
            unnoticed.append(dropped["id"])
            with capsys.disabled():
                print(
                    f"\n{dropped['id']} unnoticed: {run.outcome.value} ({run.reason}); "
                    f"refused: {[r.permission().label() for r in run.forbidden]}"
                )
    with capsys.disabled():
        print(
            f"\nnecessity, SkyPilot {version} {name}: {dropped_count} of {len(checks)} fatal "
            f"checks fatal to this operation, dropped in turn: {len(unnoticed)} unnoticed"
        )
    if not dropped_count and cl.judged_beyond(version, case):
        # (the nightly's ports-ingress and host-network launches request nothing before
        # their first exec that a default launch does not)
        pytest.skip(f"nothing fatal beyond {cl.judged_beyond(version, case)}: proven there")
    # A fatal check whose removal SkyPilot does not notice is wrong in the catalogue.
    assert dropped_count and unnoticed == []


@pytest.mark.parametrize("version", VERSIONS)
def test_random_worlds_never_pass_falsely(lab, version, capsys):
    """skycheck's verdict on a random world near the fix predicts SkyPilot's outcome."""
    rng = random.Random(20261130)
    names = [n for n in CASES if n in ("show-gpus", "volumes", "launch")] or list(CASES)
    names = [n for n in names if not cl.unjudged(version, cl.CASES[n].scenario)]
    if not names:
        pytest.skip(f"SkyPilot {version}'s inventory judges none of the worlds' operations")
    false_passes, false_failures, seen = [], [], 0
    for i in range(WORLDS):
        case = cl.CASES[names[i % len(names)]]
        probe = cl.new_identity(lab, "wprobe")
        _, report = cl.check(lab, version, case, probe, capsys)
        who = cl.new_identity(lab, "world")
        for namespace in cl.namespaces_of(report):
            lab.cp.create_namespace(namespace, exist_ok=True)
        cl.grant_world(lab, who, cl.world(rng, cl.gating_checks(report)), probe)
        code, _ = cl.check(lab, version, case, who, capsys)
        run = cl.run_case(lab, version, case, who)
        ok = cl.reached(version, case, run)
        seen += 1
        if code == 0 and not ok:
            false_passes.append((case.scenario, run.reason, cl.unexpected_403s(version, case, run)))
        if code == 1 and ok:
            false_failures.append(case.scenario)
    with capsys.disabled():  # the figures belong in the run's output, even under -q
        print(
            f"\nrandom worlds, SkyPilot {version}: {seen} worlds, "
            f"{len(false_passes)} false passes, {len(false_failures)} false failures "
            f"(by scenario: {dict(sorted(Counter(false_failures).items()))}; a feature "
            "requires what every operation it serves needs: core asks launch's permissions "
            "of sky show-gpus)"
        )
    assert false_passes == []


@pytest.mark.parametrize("version", VERSIONS)
def test_the_docs_account_passes_and_launches_as_far_as_cluster_admin(lab, version, tmp_path):
    """The docs' create-sky-sa.yaml: skycheck passes it, and sky launch as that account
    (remote_identity: sky-sa) gets as far as cluster-admin, meeting only tolerated 403s."""
    if reason := cl.unjudged(version, "launch-remote-identity-sky-sa"):
        pytest.skip(reason)
    case = cl.Case(
        "launch-remote-identity-sky-sa",
        "launch",
        (),
        remote_identity="sky-sa",
        sky_config={"kubernetes": {"remote_identity": "sky-sa"}},
    )
    lab.reset_skypilot_objects()
    namespace = lab.fresh_namespace("sky")
    lab.cp.apply(DOCS_MANIFEST.read_text().replace("namespace: default", f"namespace: {namespace}"))
    kubeconfig = lab.cp.kubeconfig_for_service_account(
        tmp_path / "sky-sa.kubeconfig", namespace, "sky-sa", create=False
    )
    who = Identity(
        name="sky-sa",
        username=f"system:serviceaccount:{namespace}:sky-sa",
        kubeconfig=kubeconfig,
        namespace=namespace,
    )
    args = ["--kubeconfig", str(lab.cp.admin_kubeconfig), "--no-sky-config", "--sa", "sky-sa"]
    args += ["-n", namespace, "--skypilot-version", cl.catalogue_version(version)]
    assert skycheck([*args, "-o", "json"]) == 0
    run = cl.run_case(lab, version, case, who)
    assert cl.unexpected_403s(version, case, run) == [], run.tail
    assert cl.got_as_far(version, case, run), (run.reason, run.tail)


# The least-privilege account's operations: (case, the scenario giving cluster-admin's
# stopping point). A launch as a named remote_identity bootstraps nothing. Not `volumes`
# yet: when its claim is still Pending, SkyPilot 0.14.1 lists PersistentVolumes cluster-wide
# (volume.py _check_pvc_access_mode_error, errors swallowed), a 403 the inventory has not
# recorded because its runs never found the claim pending.
LEAST_PRIVILEGE_CASES = (
    ("check", "check"),
    ("show-gpus", "show-gpus"),
    ("volumes-hostpath", "volumes-hostpath"),
    ("fuse-daemonset", "fuse-daemonset"),
    ("launch", "launch-remote-identity-sky-sa"),
)


@pytest.mark.parametrize(
    ("version", "name"), [(v, n) for v in VERSIONS for n, _ in LEAST_PRIVILEGE_CASES]
)
def test_the_least_privilege_account_runs_as_far_as_cluster_admin(
    lab, version, name, tmp_path, capsys
):
    """`skycheck manifest`'s account for the case's features, applied to a fresh account:
    skycheck passes it with no excess (read live), and SkyPilot run as that account
    (remote_identity: it) gets as far as cluster-admin, meeting only tolerated 403s."""
    scenario = dict(LEAST_PRIVILEGE_CASES)[name]
    if reason := cl.unjudged(version, scenario):
        pytest.skip(reason)
    base = cl.CASES[name]
    features = tuple(f for f in base.features if f != "rbac-bootstrap")
    case = cl.Case(
        scenario,
        base.operation,
        features,
        remote_identity="lp-sa",
        sky_config={**base.sky_config, "kubernetes": {"remote_identity": "lp-sa"}},
    )
    lab.reset_skypilot_objects()
    namespace = lab.fresh_namespace("lp")
    made = tmp_path / "lp-sa.yaml"
    flags = ["--sa", "lp-sa", "-n", namespace, "--skypilot-version", cl.catalogue_version(version)]
    flags += [a for f in features for a in ("-f", f)]
    assert skycheck(["manifest", *flags, "--output-file", str(made)]) == 0
    capsys.readouterr()
    for doc in yaml.safe_load_all(made.read_text()):
        if doc and doc["kind"] == "Namespace":
            lab.cp.create_namespace(doc["metadata"]["name"], exist_ok=True)
    lab.cp.apply(made)
    kubeconfig = lab.cp.kubeconfig_for_service_account(
        tmp_path / "lp-sa.kubeconfig", namespace, "lp-sa", create=False
    )
    who = Identity(
        name="lp-sa",
        username=f"system:serviceaccount:{namespace}:lp-sa",
        kubeconfig=kubeconfig,
        namespace=namespace,
    )
    args = ["--kubeconfig", str(lab.cp.admin_kubeconfig), "--no-sky-config", *flags]
    report = {}
    for _ in range(10):  # the authorizer's cache catches up with the new bindings
        code = skycheck([*args, "--excess", "-o", "json"])
        report = json.loads(capsys.readouterr().out)
        if code == 0:
            break
        time.sleep(0.5)
    denied = [c["id"] for c in report["checks"] if c["decision"] != "allowed"]
    assert report["verdict"] == "pass", denied
    assert report["excessSummary"]["state"] == "complete" and report["excess"] == []
    run = cl.run_case(lab, version, case, who)
    assert cl.unexpected_403s(version, case, run) == [], run.tail
    assert cl.got_as_far(version, case, run), (run.reason, run.tail)


# What SkyPilot's pods do as their own account (Step.in_pod): (operation, features, config).
POD_ACCOUNT_CASES = {
    "host-network-probe": (
        ("host-network",),
        {"kubernetes": {"pod_config": {"spec": {"hostNetwork": True}}}},
        "launch-host-network",
    ),
    "skylet-autodown": ((), {}, "autodown"),
}
# What the pods' own account may be refused and still do its work (the lab's in-pod runs):
# the autodown's Event breadcrumb (best effort), the HA Deployment list (a 403 is
# swallowed) and the services' deletecollection (each is then deleted by name).
POD_TOLERATED = {
    "create core/events @namespace",
    "list apps/deployments @namespace",
    "deletecollection core/services @namespace",
}


def _report(args: list[str], capsys) -> str:
    capsys.readouterr()
    skycheck([*args, "-o", "json"])
    return capsys.readouterr().out


@pytest.mark.skipif(not in_pod.available(), reason="needs a private mount namespace (root)")
@pytest.mark.parametrize("name", sorted(POD_ACCOUNT_CASES))
def test_the_fix_is_enough_for_the_pods_own_account(lab, name, tmp_path, capsys):
    """The docs' setup: one service account launches and is the pods' remote_identity.
    From nothing, skycheck's fix for it (`--sa NS:NAME`) must let SkyPilot launch and let
    the head pod's own code, run as that account, do its work: the audit log shows the
    pod's account making the requests, refused only what it does without, and making every
    request the fix grants for the pods' account."""
    features, sky_config, _ = POD_ACCOUNT_CASES[name]
    version = CI_VERSION
    lab.reset_skypilot_objects()
    namespace = lab.fresh_namespace("pod")
    lab.cp.create_service_account(namespace, "pod-sa")
    kubeconfig = lab.cp.kubeconfig_for_service_account(
        tmp_path / "pod-sa.kubeconfig", namespace, "pod-sa", create=False
    )
    who = Identity(
        name="pod-sa",
        username=f"system:serviceaccount:{namespace}:pod-sa",
        kubeconfig=kubeconfig,
        namespace=namespace,
    )
    fix = tmp_path / "fix.yaml"
    args = ["--kubeconfig", str(lab.cp.admin_kubeconfig), "--no-sky-config"]
    args += ["--sa", f"{namespace}:pod-sa", "-n", namespace]
    args += ["--skypilot-version", cl.catalogue_version(version)]
    args += [a for f in features for a in ("-f", f)]
    assert skycheck([*args, "--fix", str(fix), "-o", "json"]) == 1
    capsys.readouterr()
    cl.apply_fix(lab, fix)
    for _ in range(12):  # the authorizer's cache catches up with the new bindings
        if skycheck([*args, "-o", "json"]) == 0:
            break
        capsys.readouterr()
        time.sleep(0.5)
    capsys.readouterr()
    config = {
        **sky_config,
        "kubernetes": {**sky_config.get("kubernetes", {}), "remote_identity": "pod-sa"},
    }
    run = run_operation(lab, version, OPERATIONS[name], who, config)
    assert run.pod_account == "$IDENTITY", run.pod_account  # the launcher's own account
    assert run.pod_requests, "the pod's account made no request"
    launcher_case = cl.Case(POD_ACCOUNT_CASES[name][2], "launch", features)
    assert cl.unexpected_403s(version, launcher_case, run) == [], run.tail
    assert run.outcome is Outcome.COMPLETED, (run.reason, run.tail)
    # The pod's work went through; what it was refused, it does without (best effort).
    pod_refused = {r.permission().label() for r in run.pod_requests if r.code == 403}
    assert pod_refused <= POD_TOLERATED, pod_refused
    # Every fatal check of the pods' own account was a request the pod made.
    made = {(r.verb, r.resource) for r in run.pod_requests if r.code != 403}
    pods_checks = [
        (c["verb"], c["resource"])
        for c in json.loads(_report(args, capsys))["checks"]
        if c["account"] == "pods" and c["effect"] == "fatal" and c["required"]
    ]
    assert set(pods_checks) <= made, (pods_checks, made)

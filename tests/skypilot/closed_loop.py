"""skycheck's verdict against what real SkyPilot does, in the lab.

One *case* is a SkyPilot operation run as a lab identity under a ``~/.sky/config.yaml``,
with the features skycheck must check for it. For a case:

- :func:`check` asks skycheck (in-process, as the admin, with ``--sa``) about an identity
  and returns its JSON report and fix;
- :func:`sufficiency` starts from an identity with nothing, applies skycheck's fix as the
  docs say (``kubectl create namespace`` for the Namespaces it lists, then
  ``kubectl auth reconcile``), runs the operation and returns the run: SkyPilot must get as
  far as it does for cluster-admin (the inventory's ``stoppedAt``), and every 403 it meets
  must be one the inventory lists as tolerated;
- :func:`necessity` grants every gating check of that fix but one, per check, and runs the
  operation: SkyPilot must hit a 403 on exactly that permission and stop earlier;
- :func:`world` perturbs the fix at random (drops, wildcards, group subjects, resource
  names, RoleBindings to ClusterRoles) so skycheck's verdict can be compared with the
  outcome: a pass that SkyPilot contradicts is a false pass.

Every run starts from a first-run cluster (:meth:`Lab.reset_skypilot_objects`) and a fresh
workload namespace, so SkyPilot's create-if-absent steps happen every time.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from skycheck.cli import run as skycheck
from tests.skypilot import venvs
from tests.skypilot.inventory import judged_key
from tests.skypilot.lab import IDENTITY_NAMESPACE, Identity, Lab
from tests.skypilot.runner import OPERATIONS, SYSTEM_NAMESPACE, Outcome, Run, run_operation

REPO = Path(__file__).resolve().parents[2]
OBSERVED = REPO / "rules" / "observed"
RBAC = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class Case:
    """An inventory scenario as skycheck sees it: which features, which remote_identity."""

    scenario: str  # the inventory entry giving cluster-admin's stopping point
    operation: str
    features: tuple[str, ...]
    remote_identity: str = "SERVICE_ACCOUNT"
    sky_config: dict[str, Any] = field(default_factory=dict)


CASES: dict[str, Case] = {
    c.scenario: c
    for c in (
        Case("check", "check", ()),
        Case("show-gpus", "show-gpus", ("show-gpus",)),
        Case("status-kubernetes", "status-kubernetes", ("show-gpus",)),
        Case("volumes", "volumes", ("volumes",)),
        Case("volumes-hostpath", "volumes-hostpath", ("hostpath-volumes",)),
        Case("fuse-daemonset", "fuse-daemonset", ("object-store-mounting",)),
        Case("launch", "launch", ("rbac-bootstrap",)),
        Case(
            "launch-host-network",
            "launch",
            ("rbac-bootstrap", "host-network"),
            sky_config={"kubernetes": {"pod_config": {"spec": {"hostNetwork": True}}}},
        ),
        # Past the first exec: SkyPilot's own post-exec calls against the launched pods.
        Case(
            "ports-loadbalancer",
            "ports-lifecycle",
            ("rbac-bootstrap",),
            sky_config={"kubernetes": {"ports": "loadbalancer"}},
        ),
        Case(
            "ports-ingress",
            "ports-lifecycle",
            ("rbac-bootstrap", "ingress"),
            sky_config={"kubernetes": {"ports": "ingress"}},
        ),
        Case("autodown", "autodown", ("rbac-bootstrap",)),
        Case(
            "launch-ports-ingress",
            "launch-ports",
            ("rbac-bootstrap", "ingress"),
            sky_config={"kubernetes": {"ports": "ingress"}},
        ),
    )
}


def catalogue_version(key: str) -> str:
    """The lab's venv key ("nightly-1.0.0.dev...") as skycheck names the version."""
    return venvs.VERSIONS[key].split("==", 1)[1]


def inventory(version: str) -> dict[str, Any]:
    """The inventory of lab version ``version`` (a venv key)."""
    doc: dict[str, Any] = json.loads((OBSERVED / f"skypilot-{version}.json").read_text())
    return doc


def unjudged(version: str, scenario: str) -> str | None:
    """Why the closed loop cannot judge ``scenario`` for ``version``, or None when it can.

    Telling a tolerated 403 from a false pass needs the inventory's necessity verdicts; an
    older release's inventory may hold some scenarios as cluster-admin runs only.
    """
    entry = inventory(version)["scenarios"].get(scenario)
    if entry is None:
        return f"SkyPilot {version}'s inventory has no {scenario} scenario"
    if not entry.get("necessity"):
        return f"SkyPilot {version}'s inventory has no necessity runs for {scenario}"
    return None


def admin_outcome(version: str, case: Case) -> str:
    """Where SkyPilot stopped for cluster-admin in this scenario (the inventory's record)."""
    return str(inventory(version)["scenarios"][case.scenario]["stoppedAt"])


def judged_beyond(version: str, case: Case) -> str | None:
    """The scenario whose verdicts this case's shares (launch for launch-ports-ingress):
    its own necessity runs withdrew only what it requests beyond that one."""
    necessity = inventory(version)["scenarios"][case.scenario].get("necessity") or {}
    beyond: str | None = necessity.get("beyond")
    return beyond


def tolerated(version: str, case: Case) -> set[tuple[str, str, str, str, str, str | None]]:
    """(scope, group, resource, subresource, verb, name) whose 403 SkyPilot got past.

    The name is None where the verdict holds for every name: the inventory judges a rule
    per name only where SkyPilot asks it by several names (inventory.by_name)."""
    scenarios = inventory(version)["scenarios"]
    entry = scenarios[case.scenario]
    necessity = entry.get("necessity") or {}
    judged = list(necessity.get("permissions", []))
    # A scenario judged beyond another (launch-ports-ingress beyond launch) holds verdicts
    # only for its own extra permissions; the shared ones were judged in the other.
    beyond = necessity.get("beyond")
    if beyond:
        judged += (scenarios[beyond].get("necessity") or {}).get("permissions", [])
    out = {
        judged_key(p)
        for p in judged
        # after-stopping-point: refused in SkyPilot's teardown after the failed first
        # exec, which the lab cannot judge (the catalogue's effect for them is read from
        # SkyPilot; for list deployments, degrades)
        if p["effect"] in ("tolerated", "not-requested", "after-stopping-point")
    }
    # Requests cluster-admin itself saw refused or that no role can grant (another
    # component's namespace) are not skycheck's to grant either.
    for r in entry["requests"]:
        if r["scope"].startswith("other:") or r["scope"] == "nonresource":
            out.add((r["scope"], r["group"], r["resource"], r["subresource"], r["verb"], None))
    return out


def new_identity(lab: Lab, label: str) -> Identity:
    """A first-run cluster, a fresh workload namespace and an identity holding nothing."""
    lab.reset_skypilot_objects()
    namespace = lab.fresh_namespace("sky")
    return lab.identity(f"cl-{label}-{secrets.token_hex(3)}", namespace=namespace)


def check(
    lab: Lab,
    version: str,
    case: Case,
    who: Identity,
    capsys: pytest.CaptureFixture[str],
    fix: Path | None = None,
) -> tuple[int, dict[str, Any]]:
    """skycheck's verdict on ``who`` for ``case`` (exit code, JSON report)."""
    args = [
        "--kubeconfig",
        str(lab.cp.admin_kubeconfig),
        "--no-sky-config",
        "--sa",
        f"{IDENTITY_NAMESPACE}:{who.name}",
        "-n",
        who.namespace,
        "--remote-identity",
        case.remote_identity,
        "--skypilot-version",
        catalogue_version(version),
        "-o",
        "json",
    ]
    for feature in case.features:
        args += ["-f", feature]
    if fix is not None:
        args += ["--fix", str(fix)]
    capsys.readouterr()
    code = skycheck(args)
    out = capsys.readouterr().out
    return code, json.loads(out)


def settle(lab: Lab, version: str, case: Case, who: Identity, capsys: Any) -> dict[str, Any]:
    """Re-check until skycheck passes (the authorizer's cache lags writes), bounded."""
    report: dict[str, Any] = {}
    for attempt in range(12):
        code, report = check(lab, version, case, who, capsys)
        if code == 0:
            return report
        time.sleep(min(0.1 * 2**attempt, 1.0))
    denied = [c["id"] for c in report.get("checks", []) if c["decision"] != "allowed"]
    raise AssertionError(f"skycheck still fails after the grant: {denied}")


def apply_fix(lab: Lab, fix: Path) -> None:
    """As the docs say: create the Namespaces it lists, then ``kubectl auth reconcile``."""
    for doc in yaml.safe_load_all(fix.read_text()):
        if doc and doc.get("kind") == "Namespace":
            lab.cp.create_namespace(doc["metadata"]["name"], exist_ok=True)
    lab.cp.kubectl("auth", "reconcile", "-f", str(fix), check=True)


def gating_checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The denied checks that gate (fatal, of a required feature): what the fix grants."""
    return [
        c
        for c in report["checks"]
        if c["decision"] == "denied" and c["required"] and c["effect"] == "fatal"
    ]


def rule_for(check_: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(scope, RBAC rule) granting exactly one check."""
    resource = check_["resource"] + (f"/{check_['subresource']}" if check_["subresource"] else "")
    rule: dict[str, Any] = {
        "apiGroups": [check_["group"]],
        "resources": [resource],
        "verbs": [check_["verb"]],
    }
    if check_["name"]:
        rule["resourceNames"] = [check_["name"]]
    return (check_["namespace"] or "cluster"), rule


def grant_checks(lab: Lab, who: Identity, checks: list[dict[str, Any]], probe: Identity) -> None:
    by_scope: dict[str, list[dict[str, Any]]] = {}
    for c in checks:
        if c.get("precondition"):
            continue
        scope, rule = rule_for(c)
        by_scope.setdefault(rescope(scope, probe, who), []).append(rule)
    lab.grant(who, by_scope)


def namespaces_of(report: dict[str, Any]) -> list[str]:
    """SkyPilot's own namespaces the fix creates (missing, and the identity may not)."""
    return sorted(
        {
            p["namespace"]
            for p in report.get("preconditions", [])
            if p["state"] == "missing" and p["owner"] == "SkyPilot"
        }
    )


def fatal_here(version: str, case: Case, check_: dict[str, Any], namespace: str) -> bool:
    """Whether the inventory found this check's permission fatal for this very operation
    or its cleanup step (a WebSocket exec, audited as get, is authorized as create too).
    A feature serves several operations: listing nodes is fatal to sky check, tolerated by
    show-gpus."""
    ns = check_["namespace"]
    scope = "cluster" if ns == "" else "namespace" if ns == namespace else ns
    verbs = {check_["verb"]}
    if check_["verb"] == "create" and check_["subresource"] in ("exec", "attach", "portforward"):
        verbs.add("get")
    wanted = {(v, check_["group"], check_["resource"], check_["subresource"], scope) for v in verbs}
    necessity = inventory(version)["scenarios"][case.scenario].get("necessity") or {}
    return any(
        (p["verb"], p["group"], p["resource"], p["subresource"], p["scope"]) in wanted
        # judged per name (inventory.by_name): only that name's verdict is this check's
        and p.get("name") in (None, check_["name"])
        # fatal-cleanup: the operation's own cleanup (sky down, sky volumes delete) failed
        and p["effect"] in ("fatal", "fatal-cleanup")
        for p in necessity.get("permissions", [])
    )


def rescope(scope: str, probe: Identity, who: Identity) -> str:
    """Checks are asked for a probe identity in its own fresh namespace; grant them to
    ``who`` in ``who``'s."""
    return who.namespace if scope == probe.namespace else scope


def unexpected_403s(version: str, case: Case, run: Run) -> list[str]:
    allowed = tolerated(version, case)
    return [
        f"{r.verb} {r.group}/{r.resource}/{r.subresource} @{r.scope} {r.name or ''}".strip()
        for r in run.forbidden
        if (r.scope, r.group, r.resource, r.subresource, r.verb, None) not in allowed
        and (r.scope, r.group, r.resource, r.subresource, r.verb, r.name) not in allowed
    ]


def got_as_far(version: str, case: Case, run: Run) -> bool:
    """SkyPilot stopped where it stops for cluster-admin.

    Without exec simulation a launch stops at its first ``kubectl exec``; a run whose exec
    was upgraded (code 101) got there, even when SkyPilot's teardown afterwards met a 403
    that turns the runner's outcome into "forbidden" (the lab cannot judge those).
    """
    admin = admin_outcome(version, case)
    if run.outcome.value == admin:
        return True
    return admin == Outcome.STOPPED_AT_EXEC.value and any(
        r.subresource == "exec" and r.code == 101 for r in run.requests
    )


def reached(version: str, case: Case, run: Run) -> bool:
    """SkyPilot got as far as for cluster-admin, meeting no 403 beyond the tolerated ones."""
    return got_as_far(version, case, run) and not unexpected_403s(version, case, run)


def run_case(lab: Lab, version: str, case: Case, who: Identity) -> Run:
    return run_operation(lab, version, OPERATIONS[case.operation], who, case.sky_config)


def world(rng: random.Random, checks: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """A random RBAC world near the fix: (scope, rule) pairs, some wrong on purpose.

    Per check: kept as is, dropped, widened to ``*`` verbs, narrowed to a wrong resource
    name, or moved to another namespace; a few extra unrelated grants are added.
    """
    out: list[tuple[str, dict[str, Any]]] = []
    for c in checks:
        if c.get("precondition"):
            continue
        scope, rule = rule_for(c)
        roll = rng.random()
        if roll < 0.12:
            continue  # dropped
        if roll < 0.24:
            rule = {**rule, "verbs": ["*"]}
        elif roll < 0.30:
            rule = {**rule, "resourceNames": ["not-" + (c["name"] or "this")]}
        elif roll < 0.34 and scope != "cluster":
            scope = SYSTEM_NAMESPACE if scope != SYSTEM_NAMESPACE else "default"
        out.append((scope, rule))
    if rng.random() < 0.5:
        out.append(("cluster", {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}))
    return out


def grant_world(
    lab: Lab, who: Identity, rules: list[tuple[str, dict[str, Any]]], probe: Identity
) -> None:
    by_scope: dict[str, list[dict[str, Any]]] = {}
    for scope, rule in rules:
        by_scope.setdefault(rescope(scope, probe, who), []).append(rule)
    lab.grant(who, by_scope)


__all__ = [
    "CASES",
    "Case",
    "Outcome",
    "admin_outcome",
    "apply_fix",
    "check",
    "fatal_here",
    "gating_checks",
    "got_as_far",
    "grant_checks",
    "grant_world",
    "judged_beyond",
    "namespaces_of",
    "new_identity",
    "reached",
    "rescope",
    "run_case",
    "settle",
    "unexpected_403s",
    "world",
]

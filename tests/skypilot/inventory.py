"""The inventory: what each SkyPilot scenario asks of the apiserver, and what it cannot do without.

``regenerate(version)`` starts one lab and, per scenario (:data:`SCENARIOS`):

1. runs it as an identity bound to ``cluster-admin`` on a first-run cluster (SkyPilot's
   ``skypilot-system`` namespace and ``skypilot-*`` cluster objects deleted, a fresh workload
   namespace) and records every distinct request (verb, group, resource, subresource, scope,
   fixed name, response codes) and where SkyPilot stopped;
2. unless ``necessity=False``: a *baseline* run as an identity holding exactly the observed
   permissions (plus ``bind``/``escalate`` where SkyPilot makes roles or bindings), then one
   run per permission with only that permission withdrawn: ``fatal`` when the run stops
   earlier than the baseline with a 403, ``tolerated`` when it reaches the baseline's stopping
   point despite the 403 (the output lines SkyPilot printed about it are the evidence),
   ``not-requested`` when the request was not even made (an earlier step changed course);
   a permission SkyPilot asks only by name, for more than one name (the nightly gets
   namespaces ``kube-system`` and ``skypilot-system``), is withdrawn one name at a time,
   the other names held by ``resourceNames``, since each name may matter differently;
   and one run each without ``escalate`` and without ``bind`` (the identity never holds what
   SkyPilot's roles grant, ``*`` on ``*``), which decides whether SkyPilot needs them.

Writes ``rules/observed/skypilot-<version>.json``: sorted keys and lists, no timings, so a
regeneration on an unchanged SkyPilot and lab gives the same file (tested for ``check``).
"""

from __future__ import annotations

import copy
import json
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cluster.build import cached_lab_binaries, ensure_lab_binaries
from tests.skypilot import venvs
from tests.skypilot.lab import Identity, Lab
from tests.skypilot.runner import (
    OPERATIONS,
    SYSTEM_NAMESPACE,
    Outcome,
    Permission,
    Run,
    run_operation,
)

REPO = Path(__file__).resolve().parents[2]
OUTPUT_DIR = REPO / "rules" / "observed"
SKY_SA_MANIFEST = REPO / "tests" / "manifests" / "create-sky-sa.yaml"
SCHEMA_VERSION = 1
RBAC_GROUP = "rbac.authorization.k8s.io"
# A WebSocket exec/attach/port-forward is audited as `get` (code 101), yet kube-apiserver
# v1.37.2 also authorizes it as `create`: an identity holding only `get pods/exec` gets a 403
# audited as `get` (seen in the lab's launch baseline). Grants pair the two verbs.
UPGRADE_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})
# Runs made again when their SkyPilot API server was killed under them.
API_SERVER_ATTEMPTS = 4


def _apply_sky_sa(lab: Lab, who: Identity) -> None:
    """The docs' create-sky-sa.yaml, in SkyPilot's namespace (it says ``default``)."""
    text = SKY_SA_MANIFEST.read_text().replace("namespace: default", f"namespace: {who.namespace}")
    lab.cp.apply(text)


@dataclass(frozen=True)
class Scenario:
    """One inventory entry: an operation, the ~/.sky/config.yaml it runs under, and setup."""

    name: str
    operation: str
    sky_config: dict[str, Any] = field(default_factory=dict)
    setup: Callable[[Lab, Identity], None] | None = None
    note: str = ""
    # Necessity runs cost one SkyPilot run per permission; scenarios that repeat another's
    # requests (or cannot reach a 403-able step) record the admin run only.
    necessity: bool = True
    # Test only the permissions this scenario adds to another scenario's (whose entry holds
    # the verdicts of the shared ones); bind/escalate are then left to that scenario too.
    necessity_beyond: str | None = None


def _drifted_objects(lab: Lab, who: Identity) -> None:
    """SkyPilot's service account, roles and bindings as an older setup left them: present,
    with other rules and subjects, so the launch patches each one (config.py
    _create_or_patch_resource) instead of creating it."""
    ns = who.namespace
    rbac = "rbac.authorization.k8s.io"
    stale_rule = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    stale_subject = [{"kind": "ServiceAccount", "name": "someone-else", "namespace": ns}]

    def role(kind: str, name: str, namespace: str | None) -> dict[str, Any]:
        meta = {"name": name, **({"namespace": namespace} if namespace else {})}
        return {"apiVersion": f"{rbac}/v1", "kind": kind, "metadata": meta, "rules": stale_rule}

    def binding(kind: str, name: str, namespace: str | None, ref_kind: str, ref: str) -> Any:
        meta = {"name": name, **({"namespace": namespace} if namespace else {})}
        return {
            "apiVersion": f"{rbac}/v1",
            "kind": kind,
            "metadata": meta,
            "subjects": stale_subject,
            "roleRef": {"apiGroup": rbac, "kind": ref_kind, "name": ref},
        }

    lab.cp.create_namespace(SYSTEM_NAMESPACE, exist_ok=True)
    lab.cp.create_service_account(ns, "skypilot-service-account")
    objects = [
        role("Role", "skypilot-service-account-role", ns),
        binding(
            "RoleBinding",
            "skypilot-service-account-role-binding",
            ns,
            "Role",
            "skypilot-service-account-role",
        ),
        role("Role", "skypilot-system-service-account-role", SYSTEM_NAMESPACE),
        binding(
            "RoleBinding",
            f"skypilot-system-service-account-role-binding-{ns}",
            SYSTEM_NAMESPACE,
            "Role",
            "skypilot-system-service-account-role",
        ),
        role("ClusterRole", "skypilot-service-account-cluster-role", None),
        binding(
            "ClusterRoleBinding",
            "skypilot-service-account-cluster-role-binding",
            None,
            "ClusterRole",
            "skypilot-service-account-cluster-role",
        ),
    ]
    lab.cp.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=1))


def _ssh_key_secret(lab: Lab, who: Identity) -> None:
    """The Secret a previous launch of a release before 0.10.5 left: ``sky-ssh-keys``, which
    the next launch patches (sky/authentication.py setup_kubernetes_authentication)."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sky-ssh-keys", "namespace": who.namespace},
        "stringData": {"ssh-publickey-placeholder": "left by an earlier launch"},
    }
    lab.cp.apply(json.dumps(secret))


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("check", "check"),
    Scenario("show-gpus", "show-gpus"),
    Scenario(
        "show-gpus-after-check",
        "show-gpus-after-check",
        note="sky check kubernetes, then sky show-gpus (0.10 queries the cluster only then)",
    ),
    Scenario("status-kubernetes", "status-kubernetes"),
    Scenario("volumes", "volumes", note="sky volumes apply + delete of a k8s-pvc volume"),
    Scenario(
        "volumes-storage-class",
        "volumes-storage-class",
        note="sky volumes apply + delete of a k8s-pvc volume naming a storage class",
    ),
    Scenario(
        "volumes-hostpath",
        "volumes-hostpath",
        note="sky volumes apply + delete of a k8s-hostpath volume with cleanup_on_deletion",
    ),
    Scenario(
        "fuse-daemonset",
        "fuse-daemonset",
        note="sky.provision.kubernetes.config._configure_fuse_mounting, driven from the venv",
    ),
    Scenario("launch", "launch", note="remote_identity SERVICE_ACCOUNT (default), first run"),
    Scenario(
        "launch-drift",
        "launch",
        setup=_drifted_objects,
        note="SkyPilot's roles and bindings present with other rules and subjects: patched",
        necessity_beyond="launch",
    ),
    Scenario(
        "launch-ports-loadbalancer",
        "launch-ports",
        {"kubernetes": {"ports": "loadbalancer"}},
        necessity=False,
    ),
    Scenario(
        "launch-ports-ingress",
        "launch-ports",
        {"kubernetes": {"ports": "ingress"}},
        necessity_beyond="launch",
    ),
    Scenario(
        "launch-remote-identity-sky-sa",
        "launch",
        {"kubernetes": {"remote_identity": "sky-sa"}},
        setup=_apply_sky_sa,
        note="the docs' create-sky-sa.yaml applied first",
    ),
    Scenario(
        "launch-ssh-key-present",
        "launch",
        setup=_ssh_key_secret,
        note="the SSH key Secret sky-ssh-keys left by an earlier launch (patched before 0.10.5)",
        necessity_beyond="launch",
    ),
    Scenario(
        "launch-nodeport",
        "launch",
        {"kubernetes": {"networking": "nodeport"}},
        note="networking: nodeport (before 0.10.5: an SSH jump pod with its own account and role)",
        necessity_beyond="launch",
    ),
    Scenario(
        "launch-host-network",
        "launch",
        {"kubernetes": {"pod_config": {"spec": {"hostNetwork": True}}}},
        note="pods with hostNetwork: SkyPilot reads the probe's ConfigMap before its first exec",
        necessity_beyond="launch",
    ),
    Scenario(
        "ports-loadbalancer",
        "ports-lifecycle",
        {"kubernetes": {"ports": "loadbalancer"}},
        note=(
            "sky launch --ports 8080 to its first exec, then SkyPilot's own open_ports and "
            "query_ports (sky status --endpoints), and open_ports again with a new port"
        ),
        necessity_beyond="launch",
    ),
    Scenario(
        "ports-ingress",
        "ports-lifecycle",
        {"kubernetes": {"ports": "ingress"}},
        note=(
            "sky launch --ports 8080 to its first exec, then SkyPilot's own open_ports and "
            "query_ports (sky status --endpoints) through the nginx ingress, and open_ports "
            "again with a new port"
        ),
        necessity_beyond="launch-ports-ingress",
    ),
    Scenario(
        "autodown",
        "autodown",
        note=(
            "sky launch to its first exec, then SkyPilot's own set_autodown_annotations "
            "(sky autostop -i 10 --down, then --cancel)"
        ),
        necessity_beyond="launch",
    ),
    Scenario(
        "launch-local-credentials",
        "launch",
        {"kubernetes": {"remote_identity": "LOCAL_CREDENTIALS"}},
        necessity=False,
    ),
    Scenario(
        "jobs-controller-ha",
        "jobs-launch",
        # Small controller resources: the default (4+ CPUs, 8x memory) fits no lab node.
        {
            "jobs": {
                "controller": {
                    "high_availability": True,
                    "resources": {"infra": "kubernetes", "cpus": 1, "memory": 2},
                }
            }
        },
        note="sky jobs launch; the controller is a Deployment + PVC",
        necessity_beyond="launch",
    ),
)
SCENARIO_NAMES = tuple(s.name for s in SCENARIOS)


def _log(message: str) -> None:
    print(f"[inventory {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_scenario(
    lab: Lab,
    version: str,
    scenario: Scenario,
    label: str,
    grants: dict[str, list[dict[str, Any]]] | None,
    *,
    precreate_system: bool = False,
    cleanup: bool = True,
) -> Run:
    """One first-run execution of ``scenario``: fresh namespace, reset objects, new identity.

    ``grants=None`` binds cluster-admin; otherwise exactly those rules (see :meth:`Lab.grant`;
    the scope ``namespace`` stands for the fresh workload namespace). A run whose SkyPilot
    API server was killed under it (:attr:`Run.api_server_lost`) is made again, from scratch.
    """
    for attempt in range(1, API_SERVER_ATTEMPTS + 1):
        run = _run_scenario_once(
            lab,
            version,
            scenario,
            label,
            grants,
            precreate_system=precreate_system,
            cleanup=cleanup,
        )
        if not run.api_server_lost or attempt == API_SERVER_ATTEMPTS:
            return run
        _log(f"  {scenario.name} ({label}): SkyPilot's API server was killed; again")
    raise AssertionError("unreachable")


def _run_scenario_once(
    lab: Lab,
    version: str,
    scenario: Scenario,
    label: str,
    grants: dict[str, list[dict[str, Any]]] | None,
    *,
    precreate_system: bool,
    cleanup: bool,
) -> Run:
    lab.reset_skypilot_objects()
    namespace = lab.fresh_namespace("sky")
    # A new ServiceAccount per run: grants left in namespaces that outlive a run
    # (ingress-nginx) must never reach the next one.
    who = lab.identity(
        f"id-{label}-{secrets.token_hex(3)}", namespace=namespace, cluster_admin=grants is None
    )
    if precreate_system:
        lab.cp.create_namespace(SYSTEM_NAMESPACE)
    if grants is not None:
        lab.grant(who, {(namespace if k == "namespace" else k): v for k, v in grants.items()})
    if scenario.setup is not None:
        scenario.setup(lab, who)
    return run_operation(
        lab, version, OPERATIONS[scenario.operation], who, scenario.sky_config, cleanup=cleanup
    )


def grants_for(
    permissions: Iterable[Permission],
    *,
    without: Permission | None = None,
    names: dict[Permission, set[str]] | None = None,
    bind_escalate: Sequence[str] = ("bind", "escalate"),
    system_cluster_wide: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """RBAC rules by scope holding ``permissions`` minus ``without``.

    Names are not pinned, except where ``without`` names one object: its permission is then
    held by name for the other ``names`` of that rule (see :func:`by_name`).
    Where the identity creates roles or bindings, ``bind_escalate`` verbs are added on the
    roles of that scope (SkyPilot's roles grant ``*`` on ``*``, which the identity never holds).
    ``system_cluster_wide`` grants the ``skypilot-system`` rules cluster-wide instead (for runs
    where that namespace must not exist beforehand).
    """
    by_scope: dict[str, dict[tuple[str, str], set[str]]] = {}
    pinned: list[tuple[str, dict[str, Any]]] = []
    for perm in permissions:
        if without is not None and _same_rule(perm, without):
            others = sorted((names or {}).get(_rule_key(without), set()) - {without.name})
            if without.name is not None and others:
                pinned.append((_scope_of(perm, system_cluster_wide), _pinned_rule(perm, others)))
            continue
        scope = _scope_of(perm, system_cluster_wide)
        resource = perm.resource + (f"/{perm.subresource}" if perm.subresource else "")
        verbs = by_scope.setdefault(scope, {}).setdefault((perm.group, resource), set())
        verbs.add(perm.verb)
        if perm.subresource in UPGRADE_SUBRESOURCES and perm.verb == "get":
            verbs.add("create")
        if perm.group == RBAC_GROUP and perm.verb in ("create", "patch", "update"):
            kind = "clusterroles" if perm.resource.startswith("cluster") else "roles"
            if bind_escalate:
                by_scope[scope].setdefault((RBAC_GROUP, kind), set()).update(bind_escalate)
    rules: dict[str, list[dict[str, Any]]] = {}
    for scope, entries in sorted(by_scope.items()):
        rules[scope] = [
            {"apiGroups": [group], "resources": [resource], "verbs": sorted(verbs)}
            for (group, resource), verbs in sorted(entries.items())
        ]
    for scope, rule in pinned:
        rules.setdefault(scope, []).append(rule)
    return rules


def _scope_of(perm: Permission, system_cluster_wide: bool) -> str:
    scope = "cluster" if system_cluster_wide and perm.scope == SYSTEM_NAMESPACE else perm.scope
    return scope.split(":", 1)[1] if scope.startswith("other:") else scope


def _pinned_rule(perm: Permission, names: list[str]) -> dict[str, Any]:
    resource = perm.resource + (f"/{perm.subresource}" if perm.subresource else "")
    return {
        "apiGroups": [perm.group],
        "resources": [resource],
        "verbs": [perm.verb],
        "resourceNames": names,
    }


def by_name(permissions: Iterable[Permission]) -> dict[Permission, set[str]]:
    """Rules SkyPilot asks only by name, for several names: rule key -> the names.

    Such a rule is judged per name: the nightly reads namespace ``kube-system`` (for the
    cluster's uid, swallowing any error) and ``skypilot-system`` (which it must have) with
    one and the same permission.
    """
    names: dict[Permission, set[str | None]] = {}
    for perm in permissions:
        names.setdefault(_rule_key(perm), set()).add(perm.name)
    return {
        key: {n for n in found if n is not None}
        for key, found in names.items()
        if len(found) > 1 and None not in found
    }


def judged_key(entry: dict[str, Any]) -> tuple[str, str, str, str, str, str | None]:
    """A necessity verdict's permission (``name`` only where judged per name)."""
    return (
        entry["scope"],
        entry["group"],
        entry["resource"],
        entry["subresource"],
        entry["verb"],
        entry.get("name"),
    )


def _same_rule(a: Permission, b: Permission) -> bool:
    return (a.scope, a.group, a.resource, a.subresource, a.verb) == (
        b.scope,
        b.group,
        b.resource,
        b.subresource,
        b.verb,
    )


def _rule_key(perm: Permission) -> Permission:
    return Permission(perm.scope, perm.group, perm.resource, perm.subresource, perm.verb)


def _evidence(run: Run) -> str:
    """The output lines SkyPilot printed about a refusal (or its last line)."""
    hits = [
        line.strip()
        for line in run.tail.splitlines()
        if any(w in line.lower() for w in ("forbidden", "403", "permission", "warning"))
    ]
    return (hits[-1] if hits else run.tail.splitlines()[-1] if run.tail else "")[:300]


def _request_table(run: Run) -> list[dict[str, Any]]:
    codes: dict[tuple[str, str, str, str, str, str], set[int]] = {}
    for r in run.requests:
        key = (r.scope, r.group, r.resource, r.subresource, r.verb, r.name or "")
        codes.setdefault(key, set()).add(r.code)
    return [
        {
            "scope": scope,
            "group": group,
            "resource": resource,
            "subresource": subresource,
            "verb": verb,
            "name": name or None,
            "codes": sorted(c),
        }
        for (scope, group, resource, subresource, verb, name), c in sorted(codes.items())
    ]


def necessity(
    lab: Lab,
    version: str,
    scenario: Scenario,
    admin: Run,
    beyond: Sequence[Permission] = (),
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Baseline + one run per withdrawn permission (+ no-bind, no-escalate); see module doc.

    Permissions in ``beyond`` (another scenario's) are held but not withdrawn one by one.
    ``previous`` (an interrupted run's partial entry) supplies verdicts already found, so a
    resumed regeneration only makes the runs still missing.
    """
    perms = sorted({_rule_key(p) for p in admin.permissions})
    names = by_name(admin.permissions)
    shared = {_rule_key(p) for p in beyond}
    # Permissions the cleanup steps (sky down, volumes delete) need beyond the main steps':
    # only their withdrawal runs the cleanup, which halves a launch's necessity runs.
    cleanup_only = set(perms) - {_rule_key(p) for p in admin.main_permissions}
    has_system = any(p.scope == SYSTEM_NAMESPACE for p in perms)
    baseline = run_scenario(
        lab, version, scenario, "base", grants_for(perms), precreate_system=has_system
    )
    _log(f"  baseline: {baseline.outcome.value} ({baseline.reason}) {baseline.seconds:.0f}s")
    results: list[dict[str, Any]] = list((previous or {}).get("permissions", []))
    # What is withdrawn, one run each: a rule, or one name of a rule asked by several names.
    todo = [
        named
        for p in perms
        if p not in shared
        for named in (
            [
                Permission(p.scope, p.group, p.resource, p.subresource, p.verb, n)
                for n in sorted(names[p])
            ]
            if p in names
            else [p]
        )
    ]

    def progress(done: bool, specials: dict[str, Any]) -> dict[str, Any]:
        tested = {judged_key(r) for r in results}
        result = {
            "baseline": {
                "stoppedAt": baseline.outcome.value,
                "reason": baseline.reason,
                # Verdicts are only meaningful when the baseline stops where admin stopped.
                "matchesAdmin": baseline.outcome == admin.outcome,
            },
            "beyond": scenario.necessity_beyond,
            "complete": done,
            "permissions": sorted(results, key=lambda r: _sortable(judged_key(r))),
            "notTested": [_perm_json(p) for p in todo if _key(p) not in tested],
            "bindEscalate": specials,
        }
        if on_progress is not None:
            on_progress(result)
        return result

    specials: dict[str, Any] = dict((previous or {}).get("bindEscalate", {}))
    if (
        not specials
        and not shared
        and any(p.group == RBAC_GROUP and p.verb == "create" for p in perms)
    ):
        for verb in ("escalate", "bind"):
            kept = tuple(v for v in ("bind", "escalate") if v != verb)
            run = run_scenario(
                lab,
                version,
                scenario,
                f"no-{verb}",
                grants_for(perms, bind_escalate=kept),
                precreate_system=has_system,
            )
            fatal = run.outcome != baseline.outcome and bool(run.forbidden)
            specials[verb] = {
                "effect": "fatal" if fatal else "not-needed",
                "stoppedAt": run.outcome.value,
                "reason": run.reason,
                "evidence": _evidence(run),
            }
            _log(f"  without {verb}: {specials[verb]['effect']} ({run.reason})")
            progress(False, specials)
    # The RBAC-reconcile and runtime-class permissions first: the leads' open questions, and
    # a regeneration stopped early should have answered them.
    ordered = sorted(
        todo, key=lambda p: (p.group not in (RBAC_GROUP, "node.k8s.io"), _sortable(_key(p)))
    )
    done = {judged_key(r) for r in results}
    for index, perm in enumerate(ordered):
        if _key(perm) in done:
            continue
        namespaces_perm = perm.resource == "namespaces"
        try:
            run = run_scenario(
                lab,
                version,
                scenario,
                f"n{index}",
                grants_for(perms, without=perm, names=names, system_cluster_wide=namespaces_perm),
                precreate_system=has_system and not namespaces_perm,
                cleanup=_rule_key(perm) in cleanup_only,
            )
        except RuntimeError as err:  # e.g. SkyPilot's API server would not start
            _log(f"  without {perm.label()}: lab error, left untested: {err}")
            continue
        results.append({**_perm_json(perm), **_verdict(perm, run, baseline)})
        _log(f"  without {perm.label()}: {results[-1]['effect']} ({run.reason})")
        progress(False, specials)
    return progress(True, specials)


def _key(perm: Permission) -> tuple[str, str, str, str, str, str | None]:
    return (perm.scope, perm.group, perm.resource, perm.subresource, perm.verb, perm.name)


def _sortable(key: tuple[str, str, str, str, str, str | None]) -> tuple[str, ...]:
    return (*key[:5], key[5] or "")


def _perm_json(perm: Permission) -> dict[str, Any]:
    out = {
        "scope": perm.scope,
        "group": perm.group,
        "resource": perm.resource,
        "subresource": perm.subresource,
        "verb": perm.verb,
    }
    if perm.name is not None:
        out["name"] = perm.name  # judged per name (see by_name)
    return out


def _verdict(perm: Permission, run: Run, baseline: Run) -> dict[str, Any]:
    denied = [
        r
        for r in run.forbidden
        if _same_rule(r.permission(), perm) and (perm.name is None or r.name == perm.name)
    ]
    main = [r for r in run.requests if not r.cleanup]
    first_exec = next((i for i, r in enumerate(main) if r.subresource == "exec"), None)
    first_denied = next((i for i, r in enumerate(main) if r in denied), None)
    # The run got to the lab's stopping point: its first exec was made and not refused.
    # (Scenarios that go on past the first exec, driving SkyPilot's own post-exec code,
    # complete in the baseline: there the first exec is no stopping point.)
    reached_exec = first_exec is not None and main[first_exec].code != 403
    if not denied:
        effect = "not-requested"
    elif (
        baseline.outcome is Outcome.STOPPED_AT_EXEC
        and reached_exec
        and first_exec is not None
        and first_denied is not None
        and first_denied > first_exec
    ):
        # SkyPilot's failure path after the lab's stopping point (cleanup after the failed
        # exec): a real cluster would not take it, so the lab cannot judge this permission.
        effect = "after-stopping-point"
    elif reached_exec and first_denied is not None and baseline.outcome is Outcome.STOPPED_AT_EXEC:
        # Refused before the first exec, and SkyPilot still got there (the run's exit code
        # is the failed exec's, which alone would read as a stop).
        effect = "tolerated"
    elif run.outcome != baseline.outcome:
        effect = "fatal"
    elif run.cleanup_failed and not baseline.cleanup_failed:
        effect = "fatal-cleanup"  # sky down / volumes delete failed: objects left behind
    else:
        effect = "tolerated"
    return {
        "effect": effect,
        "stoppedAt": run.outcome.value,
        "reason": run.reason,
        "evidence": _evidence(run) if effect != "not-requested" else "",
    }


def regenerate(
    version: str,
    *,
    scenarios: Sequence[str] | None = None,
    necessity: bool = True,
    output_dir: Path | None = None,
    lab: Lab | None = None,
    resume: bool = False,
) -> Path:
    """Run the scenarios for ``version`` and write its inventory file; returns the path.

    With ``scenarios`` (names), only those are rerun and the others are kept from the existing
    file, so a partial regeneration never drops entries.
    """
    venvs.ensure_venv(version)
    unknown = set(scenarios or ()) - set(SCENARIO_NAMES)
    if unknown:
        raise ValueError(f"unknown scenarios {sorted(unknown)}; known: {list(SCENARIO_NAMES)}")
    selected = [s for s in SCENARIOS if scenarios is None or s.name in scenarios]
    target = (output_dir or OUTPUT_DIR) / f"skypilot-{version}.json"
    document = _load(target)
    started = time.monotonic()
    own_lab = lab is None
    if lab is None:
        import tempfile

        tmp = tempfile.mkdtemp(prefix="skylab-inventory-")
        lab = Lab(tmp).start()
        _log(f"lab started in {lab.started_seconds:.1f}s")
    document.update(_header(version))
    try:
        for scenario in selected:

            def save(entry: dict[str, Any], name: str = scenario.name) -> None:
                document["scenarios"][name] = entry
                _write(target, document)

            old = document["scenarios"].get(scenario.name) or {}
            previous = old.get("necessity") if resume else None
            if previous is not None and previous.get("complete"):
                continue
            document["scenarios"][scenario.name] = scenario_entry(
                lab, version, scenario, necessity=necessity, on_progress=save, previous=previous
            )
            # After every scenario: a full regeneration takes long, and an interruption
            # must not lose the scenarios already done.
            _write(target, document)
    finally:
        if own_lab:
            lab.stop()
    _log(f"{target.name}: {len(selected)} scenarios in {time.monotonic() - started:.0f}s")
    return target


def scenario_entry(
    lab: Lab,
    version: str,
    scenario: Scenario,
    *,
    necessity: bool = True,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The inventory entry of one scenario (admin run, then necessity runs if asked).

    ``on_progress`` gets the partial entry after every necessity run (``complete: false``).
    """
    admin = run_scenario(lab, version, scenario, "admin", None)
    _log(
        f"{scenario.name}: {admin.outcome.value} ({admin.reason}) in {admin.seconds:.1f}s, "
        f"{len(admin.requests)} requests, {len(admin.permissions)} distinct permissions"
    )
    entry: dict[str, Any] = {
        "operation": scenario.operation,
        "steps": [
            list(step.argv) if step.python is None else ["<python>", scenario.note]
            for step in OPERATIONS[scenario.operation].steps
        ],
        "skyConfig": copy.deepcopy(scenario.sky_config),
        "note": scenario.note,
        "stoppedAt": admin.outcome.value,
        "reason": admin.reason,
        "requests": _request_table(admin),
    }
    if necessity and scenario.necessity:
        beyond: list[Permission] = []
        if scenario.necessity_beyond is not None:
            other = next(s for s in SCENARIOS if s.name == scenario.necessity_beyond)
            beyond = run_scenario(lab, version, other, "beyond", None).permissions

        def partial(result: dict[str, Any]) -> None:
            if on_progress is not None:
                on_progress({**entry, "necessity": result})

        entry["necessity"] = globals()["necessity"](
            lab, version, scenario, admin, beyond, partial, previous
        )
    else:
        entry["necessity"] = None
    return entry


def _header(version: str) -> dict[str, Any]:
    binaries = cached_lab_binaries() or ensure_lab_binaries()
    return {
        "schemaVersion": SCHEMA_VERSION,
        "skypilot": {"version": version, "requirement": venvs.VERSIONS[version]},
        "lab": {
            "kubernetes": binaries.base.k8s_version,
            "etcd": binaries.base.etcd_version,
            "kwok": binaries.kwok_version,
            "execSimulation": False,
        },
        "regenerate": f"python -m tests.skypilot inventory --version {version}",
    }


def _write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    partial.replace(path)


def _load(path: Path) -> dict[str, Any]:
    if path.is_file():
        document: dict[str, Any] = json.loads(path.read_text())
        document.setdefault("scenarios", {})
        return document
    return {"scenarios": {}}

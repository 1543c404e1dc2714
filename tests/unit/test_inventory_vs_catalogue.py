"""The catalogue says what real SkyPilot does: rules/observed/ against rules/*.yaml.

rules/observed/skypilot-<version>.json is the lab's inventory (tests/skypilot,
``python -m tests.skypilot inventory``): per scenario, every request SkyPilot made
as cluster-admin and, from necessity runs, what a 403 on each permission did.
Here, with no cluster:

- every permission whose 403 stopped SkyPilot (fatal) is covered by a check of
  the scenario's features, at the right scope, with effect ``fatal`` for that
  version; so is bind/escalate when withholding it stopped SkyPilot;
- a permission whose 403 no operation found fatal is never a ``fatal`` check;
- every ``fatal`` check of the catalogue was requested by that version in some
  scenario (a WebSocket exec is authorized as get and create; a patch of SkyPilot's
  roles and bindings is backed by the drift run that found one fatal; bind and
  escalate: withholding them was fatal), unless its rule says
  why the lab cannot reach it (``unproven``); a rule that no run backs is marked
  ``documented`` (or ``degrades``), never silently required.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skycheck.catalogue import bind, load_catalogue, proven_versions, rules_dir
from skycheck.models import Effect, Requirement

OBSERVED = rules_dir() / "observed"
SYSTEM, INGRESS = "skypilot-system", "ingress-nginx"
NS = "sky-ns"  # stands for the SkyPilot namespace

# The features a scenario exercises (what a user would select to run it).
SCENARIO_FEATURES: dict[str, tuple[str, ...]] = {
    "check": ("core",),
    "show-gpus": ("core", "show-gpus"),
    "show-gpus-after-check": ("core", "show-gpus"),
    "status-kubernetes": ("core", "show-gpus"),
    "volumes": ("core", "volumes"),
    "volumes-storage-class": ("core", "volumes"),
    "volumes-hostpath": ("core", "volumes", "hostpath-volumes"),
    "fuse-daemonset": ("core", "object-store-mounting"),
    "launch": ("core", "rbac-bootstrap"),
    "launch-drift": ("core", "rbac-bootstrap"),
    "launch-ports-loadbalancer": ("core", "rbac-bootstrap"),
    "launch-ports-ingress": ("core", "rbac-bootstrap", "ingress"),
    "launch-host-network": ("core", "rbac-bootstrap", "host-network"),
    "launch-ssh-key-present": ("core", "rbac-bootstrap"),
    "launch-nodeport": ("core", "rbac-bootstrap"),
    "launch-remote-identity-sky-sa": ("core",),
    "launch-local-credentials": ("core", "rbac-bootstrap"),
    "jobs-controller-ha": ("core", "rbac-bootstrap", "high-availability"),
    "ports-loadbalancer": ("core", "rbac-bootstrap"),
    "ports-ingress": ("core", "rbac-bootstrap", "ingress"),
    "autodown": ("core", "rbac-bootstrap"),
}
FATAL = ("fatal", "fatal-cleanup")


def _inventories() -> Iterator[tuple[str, dict[str, Any]]]:
    """(the SkyPilot version as the catalogue names it, the inventory)."""
    for path in sorted(OBSERVED.glob("skypilot-*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        # the lab's key ("nightly-1.0.0.dev...") pins a requirement "pkg[extra]==VERSION"
        yield doc["skypilot"]["requirement"].split("==", 1)[1], doc


INVENTORIES = dict(_inventories())


def _namespace(scope: str) -> str | None:
    if scope == "namespace":
        return NS
    if scope == "cluster":
        return ""
    if scope in (SYSTEM, INGRESS):
        return scope
    return None  # another component's namespace (kube-system, ...): no rule covers it


def _requirements(version: str, features: tuple[str, ...]) -> tuple[Requirement, ...]:
    catalogue = load_catalogue()
    return bind(catalogue, NS, features, features, version=version)


def _covering(perm: dict[str, Any], reqs: tuple[Requirement, ...]) -> list[Requirement]:
    """The checks asking this permission (a verdict judged per name: checks of that name
    or of every name)."""
    ns = _namespace(perm["scope"])
    return [
        r
        for r in reqs
        if (r.group, r.resource, r.subresource, r.verb, r.namespace)
        == (perm["group"], perm["resource"], perm["subresource"], perm["verb"], ns)
        and (perm.get("name") is None or r.name in (None, perm["name"]))
    ]


def _key(perm: dict[str, Any]) -> tuple[str, str, str, str, str, str | None]:
    return (
        perm["scope"],
        perm["group"],
        perm["resource"],
        perm["subresource"],
        perm["verb"],
        perm.get("name"),
    )


def test_every_proven_version_has_an_inventory_and_nothing_else_does():
    assert sorted(INVENTORIES) == sorted(v.version for v in proven_versions())


@pytest.mark.parametrize("version", sorted(INVENTORIES))
def test_inventory_is_complete_and_its_scenarios_are_known(version):
    doc = INVENTORIES[version]
    assert doc["scenarios"], "an inventory without scenarios proves nothing"
    for name, entry in doc["scenarios"].items():
        assert name in SCENARIO_FEATURES, f"unknown scenario {name}: say which features it needs"
        necessity = entry.get("necessity")
        if necessity is not None:
            assert necessity["complete"], f"{name}: necessity runs were interrupted"
            assert not necessity["notTested"], f"{name}: {necessity['notTested']}"


def _is_system_precondition(perm: dict[str, Any], reqs: tuple[Requirement, ...]) -> bool:
    """Creating skypilot-system is the namespace precondition skycheck adds for features
    with rules there or that read it by name (engine.namespace_requirement), checked when
    the namespace is missing."""
    key = (perm["verb"], perm["group"], perm["resource"], perm["scope"])
    return key == ("create", "", "namespaces", "cluster") and any(
        r.namespace == SYSTEM or (r.resource == "namespaces" and r.name == SYSTEM) for r in reqs
    )


def _necessity(version: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, entry in INVENTORIES[version]["scenarios"].items():
        necessity = entry.get("necessity")
        if necessity:
            for perm in necessity["permissions"]:
                yield name, perm


@pytest.mark.parametrize("version", sorted(INVENTORIES))
def test_every_fatal_request_is_a_fatal_check_of_the_scenarios_features(version):
    missing = []
    for name, perm in _necessity(version):
        if perm["effect"] not in FATAL:
            continue
        reqs = _requirements(version, SCENARIO_FEATURES[name])
        if _is_system_precondition(perm, reqs):
            continue
        covering = _covering(perm, reqs)
        if not any(r.effect is Effect.FATAL for r in covering):
            missing.append((name, perm["verb"], perm["group"], perm["resource"], perm["scope"]))
    assert missing == []


@pytest.mark.parametrize("version", sorted(INVENTORIES))
def test_a_403_no_scenario_found_fatal_is_never_a_fatal_check(version):
    """Effects are per permission, the worst over SkyPilot's operations: listing pods is fatal
    to ``sky check`` and tolerated by ``sky volumes``. A permission tolerated (or never
    requested) everywhere it was withheld must not gate."""
    fatal_somewhere = {_key(p) for _, p in _necessity(version) if p["effect"] in FATAL}
    wrong = []
    for name, perm in _necessity(version):
        # fatal for some name (or for every name) is fatal for this one's rule too
        key = _key(perm)
        if (
            perm["effect"] != "tolerated"
            or key in fatal_somewhere
            or (*key[:5], None) in fatal_somewhere
        ):
            continue  # only a run that got past the 403 says it is not fatal
        for r in _covering(perm, _requirements(version, SCENARIO_FEATURES[name])):
            if r.effect is Effect.FATAL:
                wrong.append((name, r.id, perm["effect"]))
    assert wrong == []


@pytest.mark.parametrize("version", sorted(INVENTORIES))
def test_bind_and_escalate_are_fatal_exactly_when_withholding_them_was(version):
    needed: dict[str, bool] = {}
    for entry in INVENTORIES[version]["scenarios"].values():
        specials = (entry.get("necessity") or {}).get("bindEscalate") or {}
        for verb, result in specials.items():
            needed[verb] = needed.get(verb, False) or result["effect"] == "fatal"
    reqs = _requirements(version, ("core", "rbac-bootstrap"))
    if not needed:
        # No necessity run of this version withheld them. Creating a role that grants
        # everything in the namespace needs escalate and binding it needs bind unless held
        # (the apiserver's rule, shown fatal for 0.14.1): they stay fatal exactly when this
        # version still creates roles and bindings.
        creates = {
            r["resource"]
            for e in INVENTORIES[version]["scenarios"].values()
            for r in e["requests"]
            if r["verb"] == "create" and r["group"] == "rbac.authorization.k8s.io"
        }
        needed = {"escalate": "roles" in creates, "bind": "rolebindings" in creates}
    for verb, fatal in needed.items():
        checks = [r for r in reqs if r.verb == verb]
        assert checks, verb
        assert all((r.effect is Effect.FATAL) is fatal for r in checks), (verb, fatal)


# kube-apiserver authorizes a WebSocket exec, attach or port-forward (audited as get) as
# create too: an identity holding only get was refused (the lab's finding).
UPGRADES = ("exec", "attach", "portforward")


def _patched_rbac() -> set[str]:
    """RBAC resources whose patch a drift run found fatal, in any version's inventory:
    SkyPilot reconciles every one of its roles and bindings by the same code
    (config.py _create_or_patch_resource), so that evidence backs each one's patch."""
    return {
        p["resource"]
        for doc in INVENTORIES.values()
        for entry in doc["scenarios"].values()
        for p in (entry.get("necessity") or {}).get("permissions", [])
        if p["verb"] == "patch"
        and p["group"] == "rbac.authorization.k8s.io"
        and p["effect"] in FATAL
    }


def _observed(version: str) -> set[tuple[str, str, str, str, str | None]]:
    out = set()
    patched = _patched_rbac()
    for entry in INVENTORIES[version]["scenarios"].values():
        for r in entry["requests"]:
            ns = _namespace(r["scope"])
            if r["verb"] == "get" and r["subresource"] in UPGRADES:
                out.add(("create", r["group"], r["resource"], r["subresource"], ns))
            if r["verb"] == "create" and r["resource"] in patched:
                out.add(("patch", r["group"], r["resource"], r["subresource"], ns))
            out.add(
                (r["verb"], r["group"], r["resource"], r["subresource"], _namespace(r["scope"]))
            )
    return out


@pytest.mark.parametrize("version", sorted(INVENTORIES))
def test_every_fatal_check_was_requested_by_that_version(version):
    catalogue = load_catalogue()
    observed = _observed(version)
    unbacked = []
    unproven = {rule.id for rule in catalogue.rules if rule.unproven}
    for r in bind(catalogue, NS, catalogue.names, catalogue.names, version=version):
        if r.effect is not Effect.FATAL or r.verb in ("bind", "escalate"):
            continue  # bind/escalate are never requests: the test above backs them
        if r.rule_id in unproven:
            continue  # beyond the lab's reach, and marked so in the catalogue
        if (r.verb, r.group, r.resource, r.subresource, r.namespace) not in observed:
            unbacked.append(r.id)
    assert unbacked == [], "fatal in the catalogue, never requested by SkyPilot " + version


def test_documented_checks_are_the_docs_own():
    """documented means "in the docs' minimum": such a rule must cite the docs."""
    catalogue = load_catalogue()
    for rule in catalogue.rules:
        effects = {e for _, _, e in rule.effects}
        if Effect.DOCUMENTED in effects:
            assert rule.source.startswith("docs"), rule.id


def test_inventory_files_are_where_the_catalogue_ships():
    assert OBSERVED.is_dir() and Path(OBSERVED).parent == rules_dir()


def _named_requests(entry: dict[str, Any]) -> set[tuple[str, str, str, str, str, str]]:
    return {
        (r["verb"], r["group"], r["resource"], r["subresource"], r["scope"], r["name"])
        for r in entry["requests"]
        if r["name"] and r["scope"] != "nonresource"
    }


@pytest.mark.parametrize("version", sorted(INVENTORIES))
def test_a_named_request_another_version_makes_and_this_one_does_not_is_not_fatal_here(version):
    """A fixed-name object one version asks for in a scenario, while this version ran the
    same scenario to the same point and never asked for it, is not this version's need:
    such a rule (the nightly's controller account, 0.10's SSH-key Secret) is ``none`` here."""
    mine = INVENTORIES[version]["scenarios"]
    suspects: set[tuple[str, str, str, str, str, str]] = set()
    for other, doc in INVENTORIES.items():
        if other == version:
            continue
        for name, entry in doc["scenarios"].items():
            here = mine.get(name)
            if here is None or here["stoppedAt"] != entry["stoppedAt"]:
                continue
            seen_anywhere = set().union(*(_named_requests(e) for e in mine.values()))
            suspects |= _named_requests(entry) - seen_anywhere
    catalogue = load_catalogue()
    names = {rule.id: set(rule.names) | {rule.name} for rule in catalogue.rules}
    wrong = []
    for r in _requirements(version, tuple(catalogue.names)):
        if r.effect is not Effect.FATAL:
            continue
        for verb, group, resource, sub, scope, name in suspects:
            same = (r.verb, r.group, r.resource, r.subresource, r.namespace) == (
                verb,
                group,
                resource,
                sub,
                _namespace(scope),
            )
            # A named check of that object, or a nameless one (list, create) of a rule
            # that names it.
            if same and (r.name == name or (not r.name and name in names[r.rule_id])):
                wrong.append(r.id)
    assert sorted(set(wrong)) == [], f"fatal for {version}, which never asks for these objects"

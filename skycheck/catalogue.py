"""The rule catalogue: rules/*.yaml, one file per SkyPilot feature.

Files are validated against rules/schema.json by a small interpreter of the
JSON Schema keywords the schema uses (importing ``jsonschema`` would cost
~0.17 s on every run; tests check this interpreter agrees with jsonschema).
Errors name the file and the key path, e.g. ``core.yaml: rules[2].verbs[0]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from skycheck import yamlio
from skycheck.errors import CatalogueError, InputError, UsageError
from skycheck.models import (
    Alternative,
    Effect,
    Feature,
    Holding,
    Requirement,
    Rule,
    Scope,
)

# Feature names are a contract (DESIGN.md section 3); this is also display order.
DOCS_FEATURES = ("core", "show-gpus", "object-store-mounting", "ingress")
CODE_FEATURES = (
    "rbac-bootstrap",
    "high-availability",
    "volumes",
    "hostpath-volumes",
    "host-network",
)
KNOWN_FEATURES = DOCS_FEATURES + CODE_FEATURES
DEFAULT_REQUIRED = ("core",)


# Files of rules/ that are data of their own, not a feature: the risk table (risk.py).
NOT_FEATURES = frozenset({"risk.yaml"})


def feature_files(directory: Path) -> list[Path]:
    """The feature files of a rules directory, sorted (every *.yaml but NOT_FEATURES)."""
    return sorted(p for p in directory.glob("*.yaml") if p.name not in NOT_FEATURES)


def rules_dir() -> Path:
    """Where the catalogue lives: inside the wheel, or rules/ in a source checkout."""
    # The package directory itself, as importlib.resources.files("skycheck") gives it for
    # an installed wheel, without importing importlib.resources (tempfile, shutil, random:
    # 0.015 s of every run).
    packaged = Path(__file__).resolve().parent / "_rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "rules"


# --- a JSON Schema interpreter for the keywords rules/schema.json uses ----------------

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
}


def _path(parts: tuple[str | int, ...]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def schema_errors(doc: Any, schema: dict[str, Any], at: tuple[str | int, ...] = ()) -> list[str]:
    """Return "<key path>: <problem>" strings; empty when ``doc`` is valid."""
    errors: list[str] = []
    # The key path is spelled only for an error: this runs for every node of every rule file.
    if "type" in schema:
        expected = _TYPES[schema["type"]]
        if not isinstance(doc, expected) or (schema["type"] != "boolean" and isinstance(doc, bool)):
            return [f"{_path(at)}: expected {schema['type']}, got {type(doc).__name__}"]
    if "const" in schema and doc != schema["const"]:
        errors.append(f"{_path(at)}: must be {schema['const']!r}")
    if "enum" in schema and doc not in schema["enum"]:
        errors.append(f"{_path(at)}: must be one of {', '.join(map(str, schema['enum']))}")
    if isinstance(doc, str):
        if len(doc) < schema.get("minLength", 0):
            errors.append(f"{_path(at)}: must not be empty")
        if "pattern" in schema and not re.search(schema["pattern"], doc):
            errors.append(f"{_path(at)}: {doc!r} does not match {schema['pattern']}")
    if isinstance(doc, list):
        if len(doc) < schema.get("minItems", 0):
            errors.append(f"{_path(at)}: needs at least {schema['minItems']} item(s)")
        if schema.get("uniqueItems") and len({json.dumps(x, sort_keys=True) for x in doc}) != len(
            doc
        ):
            errors.append(f"{_path(at)}: items must be unique")
        if "items" in schema:
            for i, item in enumerate(doc):
                errors += schema_errors(item, schema["items"], (*at, i))
    if isinstance(doc, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in doc:
                errors.append(f"{_path((*at, key))}: required key is missing")
        for key, value in doc.items():
            if key in props:
                errors += schema_errors(value, props[key], (*at, str(key)))
            elif schema.get("additionalProperties") is False:
                errors.append(f"{_path((*at, str(key)))}: unknown key")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += schema_errors(value, schema["additionalProperties"], (*at, str(key)))
    if "not" in schema and not schema_errors(doc, schema["not"], at):
        # The only "not" the schema uses forbids a key; name it.
        banned = schema["not"].get("required", [])
        errors.append(f"{_path(at)}: key {', '.join(banned)} is not allowed here")
    if "if" in schema:
        branch = "then" if not schema_errors(doc, schema["if"], at) else "else"
        if branch in schema:
            errors += schema_errors(doc, schema[branch], at)
    return errors


@cache
def load_schema() -> dict[str, Any]:
    path = rules_dir() / "schema.json"
    try:
        schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogueError(str(path), "", f"cannot read the catalogue schema: {exc}") from None
    return schema


# --- loading ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProvenVersion:
    """A SkyPilot release the lab ran (rules/skypilot-versions.json)."""

    version: str
    package: str  # the PyPI distribution: skypilot or skypilot-nightly


@cache
def proven_versions() -> tuple[ProvenVersion, ...]:
    """SkyPilot versions the catalogue was proven against, oldest first."""
    path = rules_dir() / "skypilot-versions.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        out = tuple(ProvenVersion(v["version"], v["package"]) for v in doc["versions"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CatalogueError(path.name, "versions", f"cannot read proven versions: {exc}") from None
    if not out:
        raise CatalogueError(path.name, "versions", "lists no SkyPilot version")
    return out


def default_version() -> str:
    """The version checked when none is named or installed: the newest proven *release*.

    A development build (``.devN``, ``rcN``) is checked only when asked for or installed:
    it can need less than the release (the nightly no longer makes cluster-wide roles),
    and a release's user must not pass against a nightly's needs.
    """
    versions = [v.version for v in proven_versions()]
    releases = [v for v in versions if not re.search(r"(dev|rc|a|b)\d*$", v)]
    return (releases or versions)[-1]


def _effects(doc: dict[str, Any], source: str, at: str) -> tuple[tuple[str, str, Effect], ...]:
    """Expand effect / verbEffects / versionEffects to (version, verb, effect) triples."""
    out: list[tuple[str, str, Effect]] = []
    proven = [v.version for v in proven_versions()]
    for name in doc.get("verbEffects", {}):
        if name not in doc["verbs"]:
            raise CatalogueError(
                source, f"{at}.verbEffects.{name}", "is not one of the rule's verbs"
            )
    for version, verbs in doc.get("versionEffects", {}).items():
        if version not in proven:
            raise CatalogueError(
                source,
                f"{at}.versionEffects.{version}",
                f"not a proven version ({', '.join(proven)})",
            )
        for name in verbs:
            if name not in doc["verbs"]:
                raise CatalogueError(
                    source,
                    f"{at}.versionEffects.{version}.{name}",
                    "is not one of the rule's verbs",
                )
    for version in proven:
        for verb in doc["verbs"]:
            effect = doc.get("versionEffects", {}).get(version, {}).get(verb)
            effect = effect or doc.get("verbEffects", {}).get(verb) or doc["effect"]
            if effect != "none":
                out.append((version, verb, Effect(effect)))
    if any(e is Effect.DEGRADES for _, _, e in out) and not doc.get("lost"):
        raise CatalogueError(
            source, f"{at}.lost", "a rule with a 'degrades' effect must say what is lost"
        )
    return tuple(out)


def _alternative(doc: dict[str, Any] | None) -> Alternative | None:
    if not doc:
        return None
    return Alternative(
        text=" ".join(doc["text"].split()),
        holds=tuple(
            Holding(
                h.get("group", ""),
                h["resource"],
                tuple(h["verbs"]),
                h.get("scope", "namespace") == "cluster",
            )
            for h in doc["holds"]
        ),
    )


def _rule(doc: dict[str, Any], feature: str, source: str = "", at: str = "") -> Rule:
    scope = Scope(doc["scope"])
    return Rule(
        id=doc["id"],
        feature=feature,
        group=doc.get("group", ""),
        resource=doc["resource"],
        subresource=doc.get("subresource", ""),
        verbs=tuple(doc["verbs"]),
        scope=scope,
        namespace=doc.get("namespace", ""),
        why=" ".join(doc["why"].split()),
        breaks=" ".join(doc["breaks"].split()),
        source=" ".join(doc["source"].split()),
        name=doc.get("name", ""),
        effects=_effects(doc, source or feature, at or doc["id"]),
        lost=" ".join(doc.get("lost", "").split()),
        unproven=" ".join(doc.get("unproven", "").split()),
        when=tuple(doc.get("when", ())),
        alternative=_alternative(doc.get("alternative")),
        names=tuple(doc.get("names", ())),
        account=doc.get("account", ""),
    )


def parse_feature(text: str, source: str) -> Feature:
    """Validate and parse one catalogue file's text."""
    name = Path(source).name
    try:
        doc = yamlio.load_one(text, name, what="rules file")
    except CatalogueError:
        raise
    except InputError as exc:
        raise CatalogueError(exc.source, exc.where, exc.problem) from None
    errors = schema_errors(doc, load_schema())
    if errors:
        raise CatalogueError(name, "", errors[0])
    feature = doc["feature"]
    if Path(source).stem != feature:
        raise CatalogueError(name, "feature", f"{feature!r} must match the file name")
    for i, rule in enumerate(doc["rules"]):
        if not rule["id"].startswith(feature + "."):
            raise CatalogueError(name, f"rules[{i}].id", f"must start with '{feature}.'")
        if "name" in rule and "names" in rule:
            raise CatalogueError(name, f"rules[{i}].names", "give name or names, not both")
        if "*" in rule["verbs"]:
            raise CatalogueError(name, f"rules[{i}].verbs", "'*' is not allowed; list the verbs")
    return Feature(
        name=feature,
        title=doc["title"],
        description=" ".join(doc["description"].split()),
        source_file=name,
        rules=tuple(_rule(r, feature, name, f"rules[{i}]") for i, r in enumerate(doc["rules"])),
    )


@dataclass(frozen=True, slots=True)
class Catalogue:
    features: tuple[Feature, ...]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        known = ", ".join(f.name for f in self.features)
        raise UsageError(f"unknown feature {name!r}; known features: {known}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(r for f in self.features for r in f.rules)


def _order(name: str) -> tuple[int, str]:
    return (KNOWN_FEATURES.index(name) if name in KNOWN_FEATURES else len(KNOWN_FEATURES), name)


def load_catalogue(directory: Path | None = None) -> Catalogue:
    """Load every rules/*.yaml; rule ids must be unique across the catalogue."""
    directory = directory or rules_dir()
    files = feature_files(directory)
    if not files:
        raise CatalogueError(str(directory), "", "no rules files (*.yaml) found")
    features = [parse_feature(yamlio.read_text(p, what="rules file"), str(p)) for p in files]
    seen: dict[str, str] = {}
    for f in features:
        for i, r in enumerate(f.rules):
            if r.id in seen:
                raise CatalogueError(
                    f.source_file, f"rules[{i}].id", f"{r.id!r} is also defined in {seen[r.id]}"
                )
            seen[r.id] = f.source_file
    return Catalogue(tuple(sorted(features, key=lambda f: _order(f.name))))


# --- binding rules to a namespace -----------------------------------------------------


def select_features(
    catalogue: Catalogue, chosen: Iterable[str], all_features: bool
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return (features to check, features that must pass).

    Default: every feature is checked, ``core`` must pass and the rest are
    reported as optional. ``-f X``: check ``core`` and X, both required (core
    is what every SkyPilot feature stands on). ``--all-features``: check every
    feature and require them all.
    """
    chosen = tuple(dict.fromkeys(chosen))
    for name in chosen:
        catalogue.feature(name)  # raises on an unknown name
    if all_features:
        return catalogue.names, catalogue.names
    if chosen:
        picked = tuple(n for n in catalogue.names if n in DEFAULT_REQUIRED or n in chosen)
        return picked, picked
    required = tuple(n for n in catalogue.names if n in DEFAULT_REQUIRED)
    return catalogue.names, required


def bind(
    catalogue: Catalogue,
    namespace: str,
    features: Iterable[str],
    required: Iterable[str],
    *,
    version: str | None = None,
    not_applicable: Iterable[str] = (),
    pods_account: bool = False,
) -> tuple[Requirement, ...]:
    """Expand the chosen features' rules into one Requirement per verb and namespace.

    Only the verbs SkyPilot ``version`` needs or documents are bound (default: the
    newest proven release, see default_version), each with its effect. Features in
    ``not_applicable`` are left out, and so are rules whose ``when`` names a feature
    not checked here, and rules of the pods' own account (``account: pods``) unless
    ``pods_account``: the identity checked is the one SkyPilot's pods run as.
    """
    version = version or default_version()
    skipped = set(not_applicable)
    wanted = set(features) - skipped
    must = set(required)
    out: list[Requirement] = []
    for rule in catalogue.rules:
        if rule.feature not in wanted or not wanted.issuperset(rule.when):
            continue
        if rule.account == "pods" and not pods_account:
            continue
        ns = {Scope.NAMESPACE: namespace, Scope.FIXED: rule.namespace, Scope.CLUSTER: ""}[
            rule.scope
        ]
        for verb in rule.verbs:
            effect = rule.effect(version, verb)
            if effect is None:
                continue
            for name in request_names(rule, verb, namespace):
                out.append(
                    Requirement(
                        id=f"{rule.id}.{verb}" + (f".{name}" if rule.names and name else ""),
                        rule_id=rule.id,
                        feature=rule.feature,
                        required=rule.feature in must,
                        verb=verb,
                        group=rule.group,
                        resource=rule.resource,
                        subresource=rule.subresource,
                        namespace=ns,
                        name=name,
                        why=rule.why,
                        breaks=rule.breaks,
                        source=rule.source,
                        effect=effect,
                        lost=rule.lost,
                        alternative=rule.alternative if verb in ("bind", "escalate") else None,
                        account=rule.account or "launcher",
                    )
                )
    return tuple(out)


# Requests that carry no object name, so RBAC matches them only by a rule without
# resourceNames (ResourceNameMatches, pkg/apis/rbac/v1/evaluation_helpers.go): collection
# reads and writes, and create, whose URL has no name.
NAMELESS_VERBS = frozenset({"list", "watch", "create", "deletecollection"})


def request_names(rule: Rule, verb: str, namespace: str) -> tuple[str, ...]:
    """The object names SkyPilot's ``verb`` requests on ``rule`` carry ("" for none).

    A rule with ``names`` is checked (and fixed) per name for the verbs whose requests name
    the object. ``escalate`` is checked with the name of the request that writes the role
    (RoleEscalationAuthorized, pkg/registry/rbac/escalation_check.go, uses
    requestInfo.Name), which a create lacks, so it stays nameless when the rule also
    creates. ``bind`` is checked with the bound role's name (BindingAuthorized), so for a
    rule on roles its names are role names.
    """
    if not rule.names:
        return (rule.name,)
    if verb in NAMELESS_VERBS or (verb == "escalate" and "create" in rule.verbs):
        return ("",)
    return tuple(n.replace("{namespace}", namespace) for n in rule.names)

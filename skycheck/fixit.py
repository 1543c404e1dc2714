"""Fix-it manifests: the smallest RBAC that grants exactly what is missing.

One Role + RoleBinding per namespace involved, one ClusterRole +
ClusterRoleBinding for cluster scope, named after the subject, labelled as made
by skycheck. Rules are compacted (resources of one apiGroup with the same verbs
merged) but named grants are never merged with unnamed ones, because
resourceNames never grant list/create. Nothing the subject already holds is
granted, and never ``*``. A missing namespace SkyPilot owns comes as a Namespace;
nothing is granted in a missing namespace another component installs.

The YAML is written by hand, not by a YAML library, so each rule can carry a
comment naming the feature and checks it serves.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from skycheck.models import (
    SKYPILOT_NAMESPACES,
    Decision,
    FailOn,
    Finding,
    NamespaceState,
    Report,
    Requirement,
    Subject,
)

LABEL_KEY = "app.kubernetes.io/managed-by"
LABEL_VALUE = "skycheck"
RBAC_GROUP = "rbac.authorization.k8s.io"
VERB_ORDER = (
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "escalate",
    "bind",
    "impersonate",
)


NAME_MAX = 253  # a DNS-1123 subdomain's length, which every RBAC tool accepts as a name
_HASH_CHARS = 10  # 40 bits of SHA-256: a collision needs about a million distinct users


def _digest(text: str) -> str:
    import hashlib  # only a run that writes a fix pays for it (0.01 s)

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_CHARS]


def object_name(subject: Subject) -> str:
    """Deterministic object name, distinct for every distinct identity.

    ``kubectl auth reconcile`` merges the subjects of two bindings with one name, so two
    identities sharing a name would each get the other's grants. A service account is
    ``skycheck-<name>.<namespace>``: a namespace has no dots, so the last dot splits it back
    (``sky-sa`` in ``team`` is ``skycheck-sky-sa.team``, ``sky`` in ``sa-team`` is
    ``skycheck-sky.sa-team``). A user name can hold any character, so its readable part is
    followed by a hash of the exact user name (``alice@corp.com`` and ``Alice-corp.com``
    differ only there); these names have no dot, so they never equal a service account's.
    A service-account name too long for that form gets the hashed form too.
    """
    if subject.is_service_account:
        name = f"skycheck-{subject.name}.{subject.namespace}"
        if len(name) <= NAME_MAX:
            return name
    key = subject.username if subject.kind != "Group" else f"group:{subject.name}"
    readable = re.sub(r"[^a-z0-9]+", "-", (subject.name or subject.username).lower()).strip("-")
    room = NAME_MAX - len("skycheck-") - 1 - _HASH_CHARS
    readable = readable[:room].rstrip("-")
    return f"skycheck-{readable}-{_digest(key)}" if readable else f"skycheck-{_digest(key)}"


# Namespaces SkyPilot owns and a fix may create. ingress-nginx belongs to the ingress
# controller's installation: when it is missing, the fix is to install the controller.
CREATABLE_NAMESPACES = SKYPILOT_NAMESPACES


def fix_path_for(path: str, context: str | None) -> str:
    """Where the fix for ``context`` goes: PATH, or PATH with the context in its name."""
    if not context:
        return path
    p = Path(path)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", context).strip("-") or "context"
    return str(p.with_name(f"{p.stem}.{safe}{p.suffix}"))


@dataclass(frozen=True, slots=True)
class _Rule:
    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    names: tuple[str, ...]
    checks: tuple[str, ...]  # catalogue rule ids served
    features: tuple[str, ...]


def _verb_key(verb: str) -> tuple[int, str]:
    return (VERB_ORDER.index(verb) if verb in VERB_ORDER else len(VERB_ORDER), verb)


def compact(requirements: Iterable[Requirement]) -> list[_Rule]:
    """Merge requirements of one namespace into as few RBAC rules as is exact.

    Step 1: per (group, resource path, name) collect verbs. Step 2: merge the
    resources of one group (and one name) whose verb sets are equal. Step 3: merge
    named rules that differ only in their name. Each step only ever combines grants
    that the requirements ask for, so the result grants exactly the union of the
    requirements.
    """
    per_resource: dict[tuple[str, str, str], dict[str, set[str]]] = defaultdict(
        lambda: {"verbs": set(), "checks": set(), "features": set()}
    )
    for r in requirements:
        entry = per_resource[(r.group, r.resource_path, r.name)]
        entry["verbs"].add(r.verb)
        entry["checks"].add(r.rule_id)
        entry["features"].add(r.feature)
    merged: dict[tuple[str, str, tuple[str, ...]], dict[str, set[str]]] = defaultdict(
        lambda: {"resources": set(), "checks": set(), "features": set()}
    )
    for (group, resource, name), entry in per_resource.items():
        verbs = tuple(sorted(entry["verbs"], key=_verb_key))
        m = merged[(group, name, verbs)]
        m["resources"].add(resource)
        m["checks"] |= entry["checks"]
        m["features"] |= entry["features"]
    # Step 3: named rules of one group, resources and verbs become one rule listing every
    # name; R x V x (N1 | N2) is exactly (R x V x N1) | (R x V x N2).
    rules: dict[tuple[str, tuple[str, ...], tuple[str, ...], bool], dict[str, set[str]]] = (
        defaultdict(lambda: {"names": set(), "checks": set(), "features": set()})
    )
    for (group, name, verbs), m in merged.items():
        entry = rules[(group, tuple(sorted(m["resources"])), verbs, bool(name))]
        if name:
            entry["names"].add(name)
        entry["checks"] |= m["checks"]
        entry["features"] |= m["features"]
    out = [
        _Rule(
            group,
            resources,
            verbs,
            tuple(sorted(entry["names"])),
            tuple(sorted(entry["checks"])),
            tuple(sorted(entry["features"])),
        )
        for (group, resources, verbs, _), entry in rules.items()
    ]
    return sorted(out, key=lambda r: (r.group, r.resources, r.names, r.verbs))


def _q(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML scalar


def _list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def _metadata(name: str, namespace: str | None) -> list[str]:
    lines = ["metadata:", f"  name: {_q(name)}"]
    if namespace:
        lines.append(f"  namespace: {_q(namespace)}")
    lines += ["  labels:", f"    {LABEL_KEY}: {LABEL_VALUE}"]
    return lines


# The API server authorizes a request for a namespace by name in that namespace
# (requestinfo.py), so a Role there would do as well; the ClusterRole rule is granted
# because it also works before the namespace exists and is where a reviewer looks.
_NAMESPACE_BY_NAME_NOTE = [
    "  # (a namespace read by name is also authorized by a Role in that namespace;",
    "  #  this cluster-wide rule limited to its name works before the namespace exists)",
]


def _names_namespaces(rule: _Rule) -> bool:
    return rule.group == "" and "namespaces" in rule.resources and bool(rule.names)


def _role(kind: str, name: str, namespace: str | None, rules: list[_Rule]) -> str:
    lines = [f"apiVersion: {RBAC_GROUP}/v1", f"kind: {kind}", *_metadata(name, namespace), "rules:"]
    for rule in rules:
        served = ", ".join(rule.checks)
        lines.append(f"  # feature {', '.join(rule.features)}; checks {served}")
        if kind == "ClusterRole" and _names_namespaces(rule):
            lines += _NAMESPACE_BY_NAME_NOTE
        lines.append(f"  - apiGroups: {_list([rule.group])}")
        lines.append(f"    resources: {_list(rule.resources)}")
        if rule.names:
            lines.append(f"    resourceNames: {_list(rule.names)}")
        lines.append(f"    verbs: {_list(rule.verbs)}")
    return "\n".join(lines) + "\n"


def _subject_lines(subject: Subject) -> list[str]:
    if subject.is_service_account:
        return [
            "subjects:",
            "  - kind: ServiceAccount",
            f"    name: {_q(subject.name)}",
            f"    namespace: {_q(subject.namespace or '')}",
        ]
    kind = "Group" if subject.kind == "Group" else "User"
    return [
        "subjects:",
        f"  - kind: {kind}",
        f"    apiGroup: {RBAC_GROUP}",
        f"    name: {_q(subject.username if kind == 'User' else subject.name)}",
    ]


def _binding(kind: str, role_kind: str, name: str, namespace: str | None, subject: Subject) -> str:
    lines = [
        f"apiVersion: {RBAC_GROUP}/v1",
        f"kind: {kind}",
        *_metadata(name, namespace),
        *_subject_lines(subject),
        "roleRef:",
        f"  apiGroup: {RBAC_GROUP}",
        f"  kind: {role_kind}",
        f"  name: {_q(name)}",
    ]
    return "\n".join(lines) + "\n"


def _namespace(name: str) -> str:
    return "\n".join(["apiVersion: v1", "kind: Namespace", *_metadata(name, None)]) + "\n"


def _service_account(subject: Subject) -> str:
    return (
        "\n".join(
            ["apiVersion: v1", "kind: ServiceAccount", *_metadata(subject.name, subject.namespace)]
        )
        + "\n"
    )


def _grants(
    requirements: Iterable[Requirement], create_namespaces: Iterable[str] = ()
) -> tuple[dict[str, list[Requirement]], set[str]]:
    """Requirements to grant, by namespace ("" = cluster), and the Namespaces to create
    (only SkyPilot's own are accepted)."""
    namespaces = set(create_namespaces) & CREATABLE_NAMESPACES
    grants: dict[str, list[Requirement]] = defaultdict(list)
    for req in requirements:
        grants[req.namespace].append(req)
    return grants, namespaces


# What lets a subject grant itself any permission (Kubernetes RBAC docs, "Privilege
# escalation prevention and bootstrapping"; pkg/registry/rbac/escalation_check.go):
# escalate on roles writes a role with any rule, bind on roles binds any role, create on
# bindings cannot be restricted by name (a create request carries none), impersonate acts
# as anyone, and "*" includes all of these.
_ROLE_RESOURCES = frozenset({"roles", "clusterroles"})
_BINDING_RESOURCES = frozenset({"rolebindings", "clusterrolebindings"})


def _routes(rules: Iterable[_Rule], where: str) -> list[str]:
    out: list[str] = []
    for rule in rules:
        scope = "any name" if not rule.names else "names " + ", ".join(rule.names)
        scope += f"; feature {', '.join(rule.features)}"
        for resource in rule.resources:
            what = f"{resource}" + (f".{rule.group}" if rule.group else "")
            risky: list[str] = []
            if "*" in rule.verbs or "*" in (rule.group, resource):
                risky.append("*")
            if "impersonate" in rule.verbs:
                risky.append("impersonate")
            if rule.group == RBAC_GROUP and resource in _ROLE_RESOURCES and not rule.names:
                risky += [v for v in ("escalate", "bind") if v in rule.verbs]
            if rule.group == RBAC_GROUP and resource in _BINDING_RESOURCES:
                risky += [v for v in ("create",) if v in rule.verbs]
            if risky:
                out.append(f"{'/'.join(risky)} {what} {where} ({scope})")
    return out


def escalation_routes(requirements: Iterable[Requirement]) -> tuple[str, ...]:
    """The grants of a fix that let its subject grant itself anything, one phrase each.

    Empty when every RBAC-writing right of the fix is restricted to named objects.
    """
    grants, _ = _grants(requirements)
    out: list[str] = []
    for ns in sorted(grants):
        out += _routes(compact(grants[ns]), f"in {ns}" if ns else "cluster-wide")
    return tuple(out)


def escalation_warning(routes: Sequence[str]) -> str | None:
    """One line for the report's warnings, or None when there are no routes."""
    if not routes:
        return None
    return (
        "the fix grants rights that amount to cluster-admin (its subject can grant itself "
        f"any permission): {'; '.join(routes)}. Review before applying; SkyPilot needs "
        "such rights only to set up its own service account (rbac-bootstrap), which a "
        "kubernetes.remote_identity naming an account you created avoids"
    )


def _warning_comment(routes: Sequence[str]) -> str:
    lines = [
        "# WARNING: this fix grants rights that amount to cluster-admin: the subject can",
        "# grant itself any permission. Review before applying. Unrestricted:",
    ]
    lines += [f"#   {route}" for route in routes]
    return "\n".join(lines) + "\n"


def build_manifest(
    subject: Subject,
    requirements: Sequence[Requirement],
    *,
    create_namespaces: Iterable[str] = (),
    include_service_account: bool = False,
    header: str = "",
) -> str | None:
    """YAML granting ``requirements`` to ``subject``; None when there is nothing to grant."""
    grants, namespaces = _grants(requirements, create_namespaces)
    if not grants and not namespaces and not include_service_account:
        return None
    name = object_name(subject)
    docs: list[str] = []
    docs += [_namespace(ns) for ns in sorted(namespaces)]
    if include_service_account and subject.is_service_account:
        docs.append(_service_account(subject))
    if "" in grants:
        docs.append(_role("ClusterRole", name, None, compact(grants[""])))
        docs.append(_binding("ClusterRoleBinding", "ClusterRole", name, None, subject))
    for ns in sorted(n for n in grants if n):
        docs.append(_role("Role", name, ns, compact(grants[ns])))
        docs.append(_binding("RoleBinding", "Role", name, ns, subject))
    head = header or (
        f"# Made by skycheck for {subject.username}. Grants only what was missing.\n"
        "# Apply with kubectl auth reconcile -f FILE (it adds to roles an earlier fix made;\n"
        "# kubectl apply would replace them), as an identity that holds these permissions\n"
        "# (or has escalate and bind). Create any Namespace below first.\n"
    )
    routes = escalation_routes(requirements)
    if routes:
        head = _warning_comment(routes) + head
    return head + "---\n" + "---\n".join(docs)


def fix_namespaces(report: Report) -> tuple[str, ...]:
    """The Namespace objects the report's fix creates: SkyPilot's own namespaces that
    are missing and that the identity may not create (in the fix's scope)."""
    return tuple(
        sorted(
            {
                f.precondition.namespace
                for f in _fix_scope(report)
                if f.precondition is not None
                and f.precondition.skypilot_owned
                and f.precondition.state is NamespaceState.MISSING
                and f.decision is Decision.DENIED
            }
        )
    )


def _fix_scope(report: Report) -> tuple[Finding, ...]:
    scope = FailOn.OPTIONAL if report.fail_on is FailOn.OPTIONAL else FailOn.REQUIRED
    return report.gating_findings(scope)


def fix_manifest(report: Report) -> str | None:
    """The fix for a report: every denied check of a required feature.

    With ``--fail-on optional`` optional features count too; with ``never`` the
    fix still covers the required features, as a suggestion. A namespace
    precondition is not a permission: SkyPilot's own missing namespace becomes a
    Namespace object, and nothing at all is granted in a missing namespace that
    another component installs (``kubectl auth reconcile`` would create it and
    seem to succeed, with the component still absent).
    """
    return build_manifest(
        report.subject, _missing(report), create_namespaces=fix_namespaces(report)
    )


def fix_warning(report: Report) -> str | None:
    """The warning to add to the report when its fix grants an escalation route."""
    return escalation_warning(escalation_routes(_missing(report)))


def _missing(report: Report) -> list[Requirement]:
    """Denied permissions in the fix's scope, none in another component's missing namespace."""
    absent = {
        p.namespace
        for p in report.preconditions
        if p.state is NamespaceState.MISSING and not p.skypilot_owned
    }
    return [
        f.requirement
        for f in _fix_scope(report)
        if f.decision is Decision.DENIED
        and f.precondition is None
        and f.requirement.namespace not in absent
    ]

"""The excess audit live: what the identity holds, read from the cluster as far as it can be.

In the order that sees most (docs/excess.md):

1. the cluster's RBAC objects (Roles, ClusterRoles, RoleBindings, ClusterRoleBindings), when
   the caller may list all four: the offline audit over them (``source`` rbac-objects);
2. for the caller only, a SelfSubjectRulesReview of each namespace the checks name
   (``source`` SelfSubjectRulesReview; ``incomplete`` when the API server says so);
3. otherwise the excess is unknown, never "no excess".

A rules review does not say which binding grants a rule, nor whether a namespaced rule is held
in that namespace or cluster-wide; its rules are audited as held in the namespace asked about,
and rules naming only cluster-scoped resources as held cluster-wide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skycheck import excess, rbac
from skycheck.excess_types import Excess, ExcessState, Grant
from skycheck.models import Report

if TYPE_CHECKING:
    from skycheck.kube import Connection

RBAC_PATH = "/apis/rbac.authorization.k8s.io/v1"
_LISTS = (
    ("roles", "Role"),
    ("clusterroles", "ClusterRole"),
    ("rolebindings", "RoleBinding"),
    ("clusterrolebindings", "ClusterRoleBinding"),
)
SSRR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
_REVIEW_ROLE = "selfsubjectrulesreview"


def _get(conn: Connection, path: str) -> tuple[int, dict[str, Any]]:
    from skycheck.kube import TransportError

    try:
        resp = conn.request("GET", path)
    except TransportError as exc:
        return 0, {"message": str(exc)}
    return resp.status, resp.body


def list_rbac(conn: Connection) -> tuple[list[rbac.RbacObject] | None, str]:
    """Every RBAC object of the cluster, or None and why they could not be listed."""
    objects: list[rbac.RbacObject] = []
    for resource, kind in _LISTS:
        status, body = _get(conn, f"{RBAC_PATH}/{resource}")
        if status != 200:
            why = "forbidden" if status == 403 else (body.get("message") or f"HTTP {status}")
            return None, f"cannot list {resource} ({why})"
        for item in body.get("items") or ():
            doc = {"apiVersion": rbac.RBAC_API_VERSION, "kind": kind, **item}
            try:
                objects.append(rbac.parse_object(doc))
            except rbac.InvalidObjectError as exc:
                return None, f"cannot read {kind} {item.get('metadata', {}).get('name')}: {exc}"
    return objects, ""


def _review(conn: Connection, namespace: str) -> tuple[dict[str, Any] | None, str]:
    from skycheck.kube import TransportError

    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }
    try:
        resp = conn.request("POST", SSRR_PATH, body)
    except TransportError as exc:
        return None, str(exc)
    if resp.status not in (200, 201):
        return None, f"HTTP {resp.status}"
    status = resp.body.get("status")
    return (status if isinstance(status, dict) else None), ""


def _rule(doc: dict[str, Any]) -> rbac.PolicyRule:
    return rbac.PolicyRule(
        verbs=tuple(doc.get("verbs") or ()),
        api_groups=tuple(doc.get("apiGroups") or ()),
        resources=tuple(doc.get("resources") or ()),
        resource_names=tuple(doc.get("resourceNames") or ()),
        non_resource_urls=tuple(doc.get("nonResourceURLs") or ()),
    )


def _cluster_only(rule: rbac.PolicyRule) -> bool:
    """A rule naming only cluster-scoped resources: a RoleBinding could not grant it."""
    return bool(rule.resources) and all(
        g != "*" and r != "*" and excess.cluster_scoped(g, r.partition("/")[0])
        for g in rule.api_groups
        for r in rule.resources
    )


def from_rules_reviews(
    conn: Connection, report: Report, namespaces: list[str]
) -> tuple[rbac.RbacState | None, bool, list[str]]:
    """A state made of the caller's SelfSubjectRulesReviews (None if none could be made),
    whether any was incomplete, and notes."""
    subject = report.subject
    me = rbac.SubjectRef("User", subject.username)
    objects: list[rbac.RbacObject] = []
    cluster_rules: list[rbac.PolicyRule] = []
    incomplete = False
    notes: list[str] = []
    for ns in namespaces:
        status, why = _review(conn, ns)
        if status is None:
            return None, False, [f"SelfSubjectRulesReview in namespace {ns}: {why}"]
        if status.get("incomplete"):
            incomplete = True
            error = status.get("evaluationError") or "no reason given"
            notes.append(
                f"the API server marked the rules review of namespace {ns} incomplete "
                f"({error}): an authorizer besides RBAC may allow more"
            )
        namespaced: list[rbac.PolicyRule] = []
        for doc in status.get("resourceRules") or ():
            rule = _rule(doc)
            (cluster_rules if _cluster_only(rule) else namespaced).append(rule)
        for doc in status.get("nonResourceRules") or ():
            cluster_rules.append(_rule(doc))
        objects.append(rbac.Role(_REVIEW_ROLE, ns, tuple(namespaced)))
        ref = rbac.RoleRef("Role", _REVIEW_ROLE)
        objects.append(rbac.RoleBinding(_REVIEW_ROLE, ns, ref, (me,)))
    unique = tuple(dict.fromkeys(cluster_rules))
    objects.append(rbac.ClusterRole(_REVIEW_ROLE, unique))
    ref = rbac.RoleRef("ClusterRole", _REVIEW_ROLE)
    objects.append(rbac.ClusterRoleBinding(_REVIEW_ROLE, ref, (me,)))
    notes.append(
        "read from SelfSubjectRulesReview: it names no binding, cannot tell a namespaced "
        "grant held cluster-wide from one held in the namespace asked about, and lists "
        "only the namespaces " + ", ".join(namespaces)
    )
    return rbac.RbacState(objects), incomplete, notes


def _baseline(report: Report) -> set[tuple[object, ...]]:
    """What the bootstrap policy gives every identity of the subject's kind."""
    state = rbac.RbacState.with_bootstrap(())
    plain = excess.audit(state, report, source="", count_baseline=True)
    return {_key(i) for i in plain.items}


def _key(item: Any) -> tuple[object, ...]:
    return (
        item.verb,
        item.group,
        item.resource,
        item.subresource,
        item.non_resource_url,
        item.name,
    )


def audit_live(conn: Connection, report: Report, *, is_caller: bool) -> Excess:
    """The excess of a live report's subject, from what the caller may read."""
    from dataclasses import replace

    objects, why = list_rbac(conn)
    if objects is not None:
        return excess.audit(rbac.RbacState(objects), report, source="rbac-objects")
    if not is_caller:
        return excess.unknown(
            f"the caller may not read the cluster's RBAC objects ({why}), and a rules review "
            "answers only for the caller: excess unknown"
        )
    namespaces = sorted({report.namespace} | {f.requirement.namespace for f in report.findings})
    namespaces = [ns for ns in namespaces if ns]
    reviewed, incomplete, notes = from_rules_reviews(conn, report, namespaces)
    if reviewed is None:
        return excess.unknown(
            f"the caller may not read the cluster's RBAC objects ({why}), and "
            + "; ".join(notes)
            + ": excess unknown"
        )
    got = excess.audit(reviewed, report, source="SelfSubjectRulesReview", notes=notes)
    # A rules review includes the default grants every identity holds: leave them out too.
    base = _baseline(report)
    review = Grant("SelfSubjectRulesReview", "", "", "")
    items = tuple(
        replace(
            i,
            granted_by=tuple(
                replace(
                    review,
                    role=f"of namespace {g.namespace}" if g.namespace else "(cluster-scoped rules)",
                    namespace=g.namespace,
                )
                if g.role == _REVIEW_ROLE
                else g
                for g in i.granted_by
            ),
        )
        for i in got.items
        if _key(i) not in base
    )
    state_word = ExcessState.INCOMPLETE if incomplete else ExcessState.COMPLETE
    return replace(got, items=items, state=state_word)

"""Hypothesis strategies: random RBAC worlds, and access reviews aimed at them.

A world is a list of rbac.authorization.k8s.io/v1 objects as dicts, written with placeholders
that :func:`concrete` fills in at run time, so that every execution of an example (Hypothesis
replays examples while shrinking) gets fresh, unique names:

- ``{p}``: the example's prefix (names of its Roles, ClusterRoles and bindings);
- ``{m}``: the test module's token (user and group names nobody else uses);
- ``{a}``, ``{b}``: the two namespaces the module created; ``{c}``: one that does not exist.

The pools are small on purpose, so that rules, bindings and reviews collide often: wildcards
(``*``, ``*/scale``, ``pods/*``), subresources, resourceNames (``""`` included), apiGroups
``""`` and ``*``, non-resource URLs, aggregation labels and selectors (matchLabels,
matchExpressions with every operator, the empty selector, labels that feed the bootstrap
``view``/``edit``), ServiceAccount subjects with and without a namespace, User subjects named
like service accounts, system groups, RoleBindings to ClusterRoles, dangling roleRefs. About
two thirds of the reviews are aimed at a rule the world binds, so that "allowed" is common.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import strategies as st

from skycheck.rbac import RBAC_API_VERSION, RBAC_GROUP
from tests.differential._oracle import Query

NAMESPACES = ("{a}", "{b}")
QUERY_NAMESPACES = ("{a}", "{b}", "{c}", "")
ROLE_NAMES = tuple(f"{{p}}role{i}" for i in range(4))
BOOTSTRAP_ROLES = ("view", "edit", "admin", "system:basic-user", "system:discovery")
SA_NAMES = ("sa1", "sa2")
USERS = (
    "{m}-u1",
    "{m}-u2",
    "system:serviceaccount:{a}:sa1",  # a User subject named like a ServiceAccount
    "system:serviceaccount:{b}:sa2",
)
GROUPS = (
    "{m}-g1",
    "system:serviceaccounts",
    "system:serviceaccounts:{a}",
    "system:serviceaccounts:{b}",
    "system:authenticated",
)
SA_GROUPS = ("system:serviceaccounts", "system:authenticated")

VERBS = (
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "impersonate",
    "bind",
    "escalate",
    "frobnicate",
)
API_GROUPS = ("", "apps", "x.skycheck.test")
RESOURCES = ("pods", "deployments", "secrets", "nodes", "foos")
SUBRESOURCES = ("", "exec", "log", "status", "scale")
NAMES = ("", "a", "b")
RULE_RESOURCES = (
    "pods",
    "pods/exec",
    "pods/log",
    "pods/status",
    "pods/*",  # not a wildcard
    "*/scale",
    "*/status",
    "*/*",
    "*",
    "deployments",
    "deployments/scale",
    "secrets",
    "nodes",
    "foos",
)
PATHS = (
    "/healthz",
    "/livez",
    "/api",
    "/api/v1",
    "/apis",
    "/apis/x",
    "/logs",
    "/logs/x",
    "/version",
)
RULE_PATHS = ("/healthz", "/api", "/api/*", "/apis*", "/logs/", "/logs/*", "/version", "*")
PATH_VERBS = ("get", "post", "put", "head")

LABELS = (
    ("diff.skycheck.test/a", "1"),
    ("diff.skycheck.test/a", "2"),
    ("diff.skycheck.test/b", "x"),
    ("rbac.authorization.k8s.io/aggregate-to-view", "true"),  # feeds the bootstrap view (and
    ("rbac.authorization.k8s.io/aggregate-to-edit", "true"),  # edit, admin) roles
)
LABEL_KEYS = ("diff.skycheck.test/a", "diff.skycheck.test/b", LABELS[3][0])
LABEL_VALUES = ("1", "2", "x", "true")


def _head(kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": RBAC_API_VERSION, "kind": kind, "metadata": meta}


def _unique(items: st.SearchStrategy[Any], lo: int, hi: int) -> st.SearchStrategy[list[Any]]:
    return st.lists(items, min_size=lo, max_size=hi, unique=True)


@st.composite
def rules(draw: st.DrawFn, *, cluster: bool) -> dict[str, Any]:
    if cluster and draw(st.integers(0, 6)) == 0:
        return {
            "verbs": draw(_unique(st.sampled_from((*PATH_VERBS, "*")), 1, 2)),
            "nonResourceURLs": draw(_unique(st.sampled_from(RULE_PATHS), 1, 2)),
        }
    rule: dict[str, Any] = {
        "apiGroups": draw(_unique(st.sampled_from((*API_GROUPS, "*")), 1, 2)),
        "resources": draw(_unique(st.sampled_from(RULE_RESOURCES), 1, 3)),
        "verbs": draw(_unique(st.sampled_from((*VERBS, "*")), 1, 3)),
    }
    if draw(st.integers(0, 3)) == 0:
        rule["resourceNames"] = draw(_unique(st.sampled_from(NAMES), 1, 2))
    return rule


@st.composite
def selectors(draw: st.DrawFn) -> dict[str, Any]:
    mode = draw(st.sampled_from(["labels", "labels", "expressions", "both", "empty"]))
    selector: dict[str, Any] = {}
    if mode in ("labels", "both"):
        picked = draw(_unique(st.sampled_from(LABELS), 1, 2))
        selector["matchLabels"] = dict(picked)
    if mode in ("expressions", "both"):
        exprs = []
        for _ in range(draw(st.integers(1, 2))):
            op = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
            expr: dict[str, Any] = {"key": draw(st.sampled_from(LABEL_KEYS)), "operator": op}
            if op in ("In", "NotIn"):
                expr["values"] = draw(_unique(st.sampled_from(LABEL_VALUES), 1, 2))
            exprs.append(expr)
        selector["matchExpressions"] = exprs
    return selector  # "empty": selects every ClusterRole


@st.composite
def cluster_roles(
    draw: st.DrawFn, name: str, body_rules: st.SearchStrategy[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A ClusterRole, sometimes aggregated; ``body_rules`` draws its rules (default: rules)."""
    obj = _head("ClusterRole", name)
    labels = dict(draw(_unique(st.sampled_from(LABELS), 0, 2)))
    if labels:
        obj["metadata"]["labels"] = labels
    aggregated = draw(st.integers(0, 2)) == 0
    if aggregated:
        obj["aggregationRule"] = {
            "clusterRoleSelectors": draw(st.lists(selectors(), min_size=1, max_size=2))
        }
    one = rules(cluster=True) if body_rules is None else body_rules
    body = draw(st.lists(one, min_size=0 if aggregated else 1, max_size=3))
    if body or draw(st.booleans()):
        obj["rules"] = body  # hand-written rules of an aggregated role get overwritten
    elif aggregated and draw(st.booleans()):
        obj["rules"] = None  # ``rules: null`` is valid
    return obj


@st.composite
def subjects(draw: st.DrawFn, *, cluster: bool) -> dict[str, Any]:
    kind = draw(st.sampled_from(["ServiceAccount", "User", "Group"]))
    if kind == "ServiceAccount":
        subject: dict[str, Any] = {"kind": kind, "name": draw(st.sampled_from(SA_NAMES))}
        # Without a namespace: the RoleBinding's. (A ClusterRoleBinding requires one.)
        namespace = draw(st.sampled_from(NAMESPACES if cluster else (*NAMESPACES, None)))
        if namespace is not None:
            subject["namespace"] = namespace
        return subject
    subject = {"kind": kind, "name": draw(st.sampled_from(USERS if kind == "User" else GROUPS))}
    if draw(st.booleans()):
        subject["apiGroup"] = RBAC_GROUP  # defaulted when missing
    return subject


@st.composite
def bindings(draw: st.DrawFn, name: str, namespace: str | None) -> dict[str, Any]:
    cluster = namespace is None
    obj = _head("ClusterRoleBinding" if cluster else "RoleBinding", name, namespace)
    kind = "ClusterRole" if cluster else draw(st.sampled_from(["Role", "ClusterRole"]))
    pool = ROLE_NAMES + (BOOTSTRAP_ROLES if kind == "ClusterRole" else ()) + ("{p}missing",)
    obj["roleRef"] = {"apiGroup": RBAC_GROUP, "kind": kind, "name": draw(st.sampled_from(pool))}
    found = draw(st.lists(subjects(cluster=cluster), min_size=1, max_size=3))
    if found or draw(st.booleans()):
        obj["subjects"] = found
    return obj


@st.composite
def worlds(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Roles and ClusterRoles share names ({p}role0..3), so a roleRef's kind matters."""
    world: list[dict[str, Any]] = []
    for name in draw(_unique(st.sampled_from(ROLE_NAMES), 1, 4)):
        world.append(draw(cluster_roles(name)))
    for ns in NAMESPACES:
        for name in draw(_unique(st.sampled_from(ROLE_NAMES), 0, 2)):
            obj = _head("Role", name, ns)
            obj["rules"] = draw(st.lists(rules(cluster=False), min_size=1, max_size=3))
            world.append(obj)
        for i in range(draw(st.integers(1, 3))):
            world.append(draw(bindings(f"{{p}}rb{i}", ns)))
    for i in range(draw(st.integers(0, 2))):
        world.append(draw(bindings(f"{{p}}crb{i}", None)))
    return world


def break_cycles(world: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For worlds whose ClusterRoles aggregate each other: on a cluster the outcome depends on
    the order kube-controller-manager syncs them and on the rules they held before (the
    bootstrap view/edit/admin carry their whole history), so no evaluator can predict it.
    Drop the aggregated roles' own rules, and their labels that feed the bootstrap roles:
    what remains converges to one outcome whatever the order."""
    out = []
    for obj in world:
        if obj["kind"] == "ClusterRole" and obj.get("aggregationRule") is not None:
            obj = {k: v for k, v in obj.items() if k != "rules"}
            labels = {
                k: v
                for k, v in (obj["metadata"].get("labels") or {}).items()
                if not k.startswith("rbac.authorization.k8s.io/aggregate-to-")
            }
            obj["metadata"] = {**obj["metadata"], "labels": labels}
        out.append(obj)
    return out


# --- reviews --------------------------------------------------------------------------------


def sa_identity(namespace: str, name: str) -> tuple[str, tuple[str, ...]]:
    """What a ServiceAccount token carries (a SubjectAccessReview must be sent all of it)."""
    return (
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )


@st.composite
def identities(draw: st.DrawFn) -> tuple[str, tuple[str, ...]]:
    if draw(st.booleans()):
        return sa_identity(draw(st.sampled_from(NAMESPACES)), draw(st.sampled_from(SA_NAMES)))
    user = draw(st.sampled_from((*USERS, "{m}-nobody", "system:serviceaccount:{c}:sa1")))
    groups = draw(_unique(st.sampled_from(GROUPS), 0, 3))
    if draw(st.integers(0, 40)) == 0:
        groups.append("system:masters")  # bypasses RBAC
    return user, tuple(groups)


@st.composite
def identity_for(draw: st.DrawFn, subject: dict[str, Any], binding_ns: str | None) -> Any:
    """An identity the subject should match (or nearly: other namespace, dropped groups)."""
    kind, name = subject["kind"], subject["name"]
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns or draw(st.sampled_from(NAMESPACES))
        user, groups = sa_identity(ns, name)
        if draw(st.integers(0, 5)) == 0:
            groups = tuple(draw(st.permutations(groups))[:1])  # a SAR that forgot groups
        return user, groups
    if kind == "User":
        return name, tuple(draw(_unique(st.sampled_from(GROUPS), 0, 2)))
    user = draw(st.sampled_from(("{m}-u1", "system:serviceaccount:{a}:sa2")))
    return user, tuple({name, *draw(_unique(st.sampled_from(GROUPS), 0, 2))})


@st.composite
def random_queries(draw: st.DrawFn) -> Query:
    user, groups = draw(identities())
    if draw(st.integers(0, 9)) == 0:
        return Query(
            user,
            groups,
            draw(st.sampled_from((*PATH_VERBS, "*"))),
            path=draw(st.sampled_from(PATHS)),
        )
    return Query(
        user,
        groups,
        verb=draw(st.sampled_from(VERBS if draw(st.integers(0, 15)) else ("*",))),
        namespace=draw(st.sampled_from(QUERY_NAMESPACES)),
        group=draw(st.sampled_from(API_GROUPS if draw(st.integers(0, 15)) else ("*",))),
        resource=draw(st.sampled_from(RESOURCES if draw(st.integers(0, 15)) else ("*",))),
        subresource=draw(st.sampled_from(SUBRESOURCES if draw(st.integers(0, 15)) else ("*",))),
        name=draw(st.sampled_from(NAMES)),
    )


def _rules_of(world: list[dict[str, Any]], ref: dict[str, str], ns: str | None) -> list[Any]:
    for obj in world:
        if obj["kind"] != ref["kind"] or obj["metadata"]["name"] != ref["name"]:
            continue
        if obj["kind"] == "Role" and obj["metadata"]["namespace"] != ns:
            continue
        return list(obj.get("rules") or ())
    return []


@st.composite
def aimed_queries(draw: st.DrawFn, world: list[dict[str, Any]]) -> Query:
    """A review built from a binding, a subject of it, and a rule of the role it references
    (aggregated roles: their own or a random rule of the world)."""
    bound = [o for o in world if o["kind"].endswith("Binding")]
    if not bound:
        return draw(random_queries())
    binding = draw(st.sampled_from(bound))
    ns = binding["metadata"].get("namespace")
    rules_ = _rules_of(world, binding["roleRef"], ns)
    if not rules_:
        rules_ = [r for o in world for r in (o.get("rules") or ())]
    subjects_ = binding.get("subjects") or []
    if subjects_:
        user, groups = draw(identity_for(draw(st.sampled_from(subjects_)), ns))
    else:
        user, groups = draw(identities())
    if not rules_:
        return dataclasses.replace(draw(random_queries()), user=user, groups=groups)
    rule = draw(st.sampled_from(rules_))

    def pick(values: list[str] | None, pool: tuple[str, ...]) -> str:
        value = draw(st.sampled_from(values or list(pool)))
        return draw(st.sampled_from(pool)) if value == "*" and draw(st.booleans()) else value

    if "nonResourceURLs" in rule:
        path = pick(rule["nonResourceURLs"], PATHS)
        if path.endswith("*") and path != "*" and draw(st.booleans()):
            path = path.rstrip("*") + draw(st.sampled_from(("", "x", "v1/y")))
        return Query(user, groups, pick(rule["verbs"], PATH_VERBS), path=path.replace("*", ""))
    resource, _, subresource = pick(rule["resources"], RESOURCES).partition("/")
    if resource == "*":
        resource = draw(st.sampled_from(RESOURCES))
    if subresource == "*" and draw(st.booleans()):
        subresource = draw(st.sampled_from(SUBRESOURCES))
    if draw(st.integers(0, 4)) == 0:
        subresource = draw(st.sampled_from(SUBRESOURCES))
    names = rule.get("resourceNames")
    return Query(
        user,
        groups,
        verb=pick(rule["verbs"], VERBS),
        namespace=ns if ns and draw(st.integers(0, 3)) else draw(st.sampled_from(QUERY_NAMESPACES)),
        group=pick(rule["apiGroups"], API_GROUPS),
        resource=resource,
        subresource=subresource,
        name=draw(st.sampled_from(names))
        if names and draw(st.integers(0, 3))
        else draw(st.sampled_from(NAMES)),
    )


def queries(world: list[dict[str, Any]], count: int) -> st.SearchStrategy[list[Query]]:
    one = st.one_of(aimed_queries(world), aimed_queries(world), random_queries())
    return st.lists(one, min_size=count, max_size=count)


# --- placeholders -------------------------------------------------------------------------


def concrete(value: Any, names: dict[str, str]) -> Any:
    """``value`` (a world, a Query, a string) with the placeholders replaced."""
    if isinstance(value, Query):
        return Query(
            **{f.name: concrete(getattr(value, f.name), names) for f in dataclasses.fields(value)}
        )
    if isinstance(value, tuple):
        return tuple(concrete(v, names) for v in value)
    text = json.dumps(value)
    for key, replacement in names.items():
        text = text.replace("{" + key + "}", replacement)
    return json.loads(text)

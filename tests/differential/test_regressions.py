"""Named RBAC cases, each proved on both sides: the real kube-apiserver and the offline evaluator.

Every disagreement the differential test (test_offline_vs_apiserver.py) finds becomes a case
here, named after what it proves; the rest are hand-picked from the semantics a checker must
match (shared/reference/rbac-semantics.md). Each case applies a small world to the test
control plane, asks its reviews as SubjectAccessReviews, and requires the apiserver, the
offline evaluator and the expectation written here to agree.

Disagreements found so far:

- ``test_aggregated_role_matching_nothing_keeps_its_hand_written_rules``: the evaluator
  emptied an aggregated ClusterRole whose selectors match no other ClusterRole. The
  controller writes with server-side apply, and an apply configuration with no rules leaves
  the field to the manager that wrote it: the hand-written rules stay (and grant).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from skycheck import rbac
from tests.differential._lab import Lab, Outcome
from tests.differential._oracle import Query
from tests.differential._worlds import sa_identity

pytestmark = pytest.mark.cluster

V1 = rbac.RBAC_API_VERSION
_counter = itertools.count()

U1, U2 = "{m}-u1", "{m}-u2"
SA_A1 = sa_identity("{a}", "sa1")  # system:serviceaccount:{a}:sa1 with its three groups


def role(name: str, ns: str, *rules: dict[str, Any], kind: str = "Role") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if kind == "Role":
        meta["namespace"] = ns
    return {"apiVersion": V1, "kind": kind, "metadata": meta, "rules": list(rules)}


def cluster_role(name: str, *rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    obj = role(name, "", *rules, kind="ClusterRole")
    obj.update(extra)
    return obj


def rule(verbs: str, resources: str, groups: str = "", names: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiGroups": groups.split(",") if groups != "" else [""],
        "resources": resources.split(","),
        "verbs": verbs.split(","),
    }
    if names is not None:
        out["resourceNames"] = names.split(",")
    return out


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "name": name, "apiGroup": rbac.RBAC_GROUP}


def binding(
    name: str, ns: str | None, ref_kind: str, ref: str, *subjects: dict[str, str]
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns is not None:
        meta["namespace"] = ns
    return {
        "apiVersion": V1,
        "kind": "RoleBinding" if ns is not None else "ClusterRoleBinding",
        "metadata": meta,
        "subjects": list(subjects),
        "roleRef": {"apiGroup": rbac.RBAC_GROUP, "kind": ref_kind, "name": ref},
    }


def q(
    who: str | tuple[str, tuple[str, ...]],
    verb: str,
    resource: str = "pods",
    namespace: str = "{a}",
    *,
    sub: str = "",
    name: str = "",
    group: str = "",
    path: str = "",
) -> Query:
    user_, groups = (who, ()) if isinstance(who, str) else who
    return Query(user_, groups, verb, namespace, group, resource, sub, name, path)


def both(lab: Lab, world: list[dict[str, Any]], cases: list[tuple[Query, bool]]) -> Outcome:
    """Run the world; every review must come back as expected from both sides."""
    queries = [query for query, _ in cases]
    assert len(set(queries)) == len(queries), "duplicate review in a case"
    outcome = lab.run(world, queries, f"{lab.names['m']}-r{next(_counter)}-")
    wrong = []
    for (_, want), asked, live, offline in zip(
        cases, outcome.asked, outcome.live, outcome.offline, strict=True
    ):
        got_live, got_offline = bool(live.get("allowed")), offline.allowed
        if not got_live == got_offline == want:
            wrong.append(
                f"{asked.describe()}: expected {want}, apiserver {got_live} "
                f"({live.get('reason', '')!r}), offline {got_offline} ({offline.reason!r})"
            )
    assert not wrong, "\n".join(wrong) + "\n--- world:\n" + outcome.world_yaml()
    return outcome


# --- disagreements found by the differential test ----------------------------------------


def test_aggregated_role_matching_nothing_keeps_its_hand_written_rules(lab: Lab) -> None:
    lonely = cluster_role(
        "{p}lonely",
        rule("get", "pods"),
        aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"diff.skycheck.test/x": "no"}}]},
    )
    fed = cluster_role(
        "{p}fed",
        rule("get", "secrets"),  # replaced: the selector matches {p}source
        aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"diff.skycheck.test/s": "1"}}]},
    )
    source = cluster_role("{p}source", rule("list", "pods"))
    source["metadata"]["labels"] = {"diff.skycheck.test/s": "1"}
    world = [
        lonely,
        fed,
        source,
        binding("{p}rb1", "{a}", "ClusterRole", "{p}lonely", user(U1)),
        binding("{p}rb2", "{a}", "ClusterRole", "{p}fed", user(U2)),
    ]
    outcome = both(
        lab,
        world,
        [
            (q(U1, "get"), True),  # the hand-written rule of the role that aggregates nothing
            (q(U2, "get", "secrets"), False),  # replaced by the aggregation
            (q(U2, "list"), True),
        ],
    )
    rules = outcome.state.cluster_role_rules(outcome.objects[0]["metadata"]["name"])
    assert rules == (rbac.PolicyRule(("get",), ("",), ("pods",)),)


# --- hand-picked: rule matching ---------------------------------------------------------------


def test_pods_star_is_not_a_wildcard_but_star_slash_sub_is(lab: Lab) -> None:
    world = [
        role("{p}podstar", "{a}", rule("get", "pods/*")),
        role("{p}subexec", "{a}", rule("get", "*/exec")),
        binding("{p}rb1", "{a}", "Role", "{p}podstar", user(U1)),
        binding("{p}rb2", "{a}", "Role", "{p}subexec", user(U2)),
    ]
    both(
        lab,
        world,
        [
            (q(U1, "get", sub="exec"), False),
            (q(U1, "get"), False),
            (q(U1, "get", sub="*"), True),  # only a request for subresource "*" itself
            (q(U2, "get", sub="exec"), True),
            (q(U2, "get", "deployments", sub="exec", group="apps"), False),  # group ""
            (q(U2, "get"), False),
        ],
    )


def test_resource_names_never_grant_list_create_or_deletecollection(lab: Lab) -> None:
    world = [
        role("{p}named", "{a}", rule("get,list,create,delete,deletecollection", "pods", "", "a")),
        role("{p}emptyname", "{a}", rule("list,get", "pods", "", "")),
        binding("{p}rb1", "{a}", "Role", "{p}named", user(U1)),
        binding("{p}rb2", "{a}", "Role", "{p}emptyname", user(U2)),
    ]
    both(
        lab,
        world,
        [
            (q(U1, "get", name="a"), True),
            (q(U1, "delete", name="a"), True),
            (q(U1, "get", name="b"), False),
            (q(U1, "list"), False),
            (q(U1, "create"), False),
            (q(U1, "deletecollection"), False),
            # A literal "" in resourceNames matches requests without a name: list works.
            (q(U2, "list"), True),
            (q(U2, "get", name="a"), False),
        ],
    )


def test_wildcards_match_one_way_only(lab: Lab) -> None:
    every_verb = "get,list,watch,create,update,patch,delete,deletecollection"
    world = [
        role("{p}listed", "{a}", rule(every_verb, "pods")),
        role("{p}star", "{a}", rule("*", "*", "*")),
        binding("{p}rb1", "{a}", "Role", "{p}listed", user(U1)),
        binding("{p}rb2", "{a}", "Role", "{p}star", user(U2)),
    ]
    both(
        lab,
        world,
        [
            (q(U1, "*"), False),  # every verb listed is not "*"
            (q(U1, "get", "*"), False),
            (q(U1, "get", group="*"), False),
            (q(U2, "*"), True),
            (q(U2, "get", "*", group="*"), True),
            (q(U2, "frobnicate", "anything", group="x.example.com", sub="y"), True),
        ],
    )


def test_non_resource_urls_match_exactly_or_by_trailing_star_prefix(lab: Lab) -> None:
    nonresource = {"verbs": ["get"], "nonResourceURLs": ["/logs/*", "/exact"]}
    world = [
        cluster_role("{p}urls", nonresource),
        binding("{p}crb", None, "ClusterRole", "{p}urls", user(U1)),
    ]
    both(
        lab,
        world,
        [
            (q(U1, "get", path="/logs/x/y"), True),
            (q(U1, "get", path="/logs/"), True),
            (q(U1, "get", path="/logs"), False),
            (q(U1, "get", path="/exact"), True),
            (q(U1, "get", path="/exact/more"), False),
            (q(U1, "post", path="/exact"), False),
        ],
    )


# --- hand-picked: scope ---------------------------------------------------------------------


def test_cluster_scope_only_through_cluster_role_bindings(lab: Lab) -> None:
    world = [
        cluster_role("{p}cr", rule("get", "pods,nodes")),
        binding("{p}rb", "{a}", "ClusterRole", "{p}cr", user(U1)),
        binding("{p}crb", None, "ClusterRole", "{p}cr", user(U2)),
    ]
    both(
        lab,
        world,
        [
            (q(U1, "get", namespace="{a}"), True),  # a RoleBinding to a ClusterRole: {a} only
            (q(U1, "get", namespace="{b}"), False),
            (q(U1, "get", namespace=""), False),  # "" = all namespaces
            (q(U1, "get", "nodes", namespace=""), False),
            (q(U1, "get", "nodes", namespace="{a}"), True),  # a namespaced review of nodes
            (q(U2, "get", "nodes", namespace=""), True),
            (q(U2, "get", namespace=""), True),
            (q(U2, "get", namespace="{c}"), True),  # even a namespace that does not exist
        ],
    )


def test_role_binding_resolves_role_in_its_own_namespace_and_by_kind(lab: Lab) -> None:
    world = [
        role("{p}same", "{a}", rule("get", "pods")),
        cluster_role("{p}same", rule("get", "secrets")),
        role("{p}elsewhere", "{b}", rule("get", "pods")),
        binding("{p}rb1", "{a}", "Role", "{p}same", user(U1)),
        binding("{p}rb2", "{a}", "ClusterRole", "{p}same", user(U2)),
        binding("{p}rb3", "{a}", "Role", "{p}elsewhere", user("{m}-u3")),
    ]
    outcome = both(
        lab,
        world,
        [
            (q(U1, "get"), True),
            (q(U1, "get", "secrets"), False),
            (q(U2, "get", "secrets"), True),
            (q(U2, "get"), False),
            (q("{m}-u3", "get"), False),  # Role {p}elsewhere is in {b}: dangling in {a}
            (q("{m}-u3", "get", namespace="{b}"), False),
        ],
    )
    assert any("not found" in r.reason for r in outcome.offline[4:])


def test_dangling_role_ref_grants_nothing_and_is_reported(lab: Lab) -> None:
    world = [
        binding("{p}rb", "{a}", "Role", "{p}missing", user(U1)),
        binding("{p}crb", None, "ClusterRole", "{p}missing", user(U1)),
    ]
    outcome = both(lab, world, [(q(U1, "get"), False), (q(U1, "get", namespace=""), False)])
    live_reason = outcome.live[0].get("reason", "")
    assert "not found" in live_reason, live_reason
    assert outcome.offline[0].evaluation_errors


# --- hand-picked: subjects --------------------------------------------------------------------


def test_service_account_subject_without_namespace_takes_the_role_bindings(lab: Lab) -> None:
    sa = {"kind": "ServiceAccount", "name": "sa1"}
    world = [role("{p}r", "{a}", rule("get", "pods")), binding("{p}rb", "{a}", "Role", "{p}r", sa)]
    both(
        lab,
        world,
        [
            (q(SA_A1, "get"), True),
            (q(sa_identity("{b}", "sa1"), "get", namespace="{a}"), False),
        ],
    )


def test_service_account_subject_without_namespace_in_cluster_role_binding(lab: Lab) -> None:
    """Refused by the API server and by the manifest parser alike (it could never match)."""
    obj = binding(f"{lab.names['m']}-nons", None, "ClusterRole", "view")
    obj["subjects"] = [{"kind": "ServiceAccount", "name": "sa1"}]
    answer = lab.oracle.call(
        "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", obj, ok=(422,)
    )
    assert "namespace" in answer.get("message", "")
    with pytest.raises(rbac.InvalidObjectError, match="namespace is required"):
        rbac.parse_object(obj)
    # And the evaluator's matcher never lets it match, should one come from elsewhere.
    subject = rbac.SubjectRef("ServiceAccount", "sa1")
    assert not rbac.applies_to_user("system:serviceaccount:x:sa1", (), subject, "")


def test_user_subject_named_like_a_service_account_matches_it(lab: Lab) -> None:
    world = [
        role("{p}r", "{a}", rule("get", "pods")),
        binding("{p}rb", "{a}", "Role", "{p}r", user("system:serviceaccount:{a}:sa1")),
        role("{p}r2", "{a}", rule("list", "pods")),
        binding("{p}rb2", "{a}", "Role", "{p}r2", {"kind": "ServiceAccount", "name": "sa2"}),
    ]
    both(
        lab,
        world,
        [
            (q(SA_A1, "get"), True),
            (q("system:serviceaccount:{a}:sa1", "get"), True),
            # and a ServiceAccount subject matches that user name, groups or not
            (q("system:serviceaccount:{a}:sa2", "list"), True),
            (q(sa_identity("{a}", "sa2"), "list"), True),
        ],
    )


def test_group_bindings_need_the_groups_in_the_review(lab: Lab) -> None:
    """SubjectAccessReview adds no groups: without the SA groups, group bindings are missed."""
    sa_group = {"kind": "Group", "name": "system:serviceaccounts:{a}", "apiGroup": rbac.RBAC_GROUP}
    authenticated = {"kind": "Group", "name": "system:authenticated"}  # apiGroup defaulted
    world = [
        role("{p}r", "{a}", rule("get", "pods")),
        role("{p}r2", "{a}", rule("list", "pods")),
        binding("{p}rb", "{a}", "Role", "{p}r", sa_group),
        binding("{p}rb2", "{a}", "Role", "{p}r2", authenticated),
    ]
    both(
        lab,
        world,
        [
            (q(SA_A1, "get"), True),
            (q(SA_A1[0], "get"), False),
            (q(SA_A1, "list"), True),
            (q(SA_A1[0], "list"), False),
            (q((U1, ("system:authenticated",)), "list"), True),
        ],
    )


def test_system_masters_bypasses_rbac(lab: Lab) -> None:
    both(
        lab,
        [],
        [
            (q((U1, ("system:masters",)), "delete", "secrets", namespace=""), True),
            (q((U1, ()), "delete", "secrets", namespace=""), False),
        ],
    )


def test_default_grants_of_every_authenticated_identity(lab: Lab) -> None:
    """The bootstrap policy: system:basic-user, system:discovery, system:public-info-viewer."""
    review = "selfsubjectaccessreviews"
    both(
        lab,
        [],
        [
            (q(SA_A1, "create", review, namespace="", group="authorization.k8s.io"), True),
            (q((U1, ()), "create", review, namespace="", group="authorization.k8s.io"), False),
            (q(SA_A1, "get", path="/version"), True),
            (q(SA_A1, "get", path="/apis/apps"), True),
            (q((U1, ("system:authenticated",)), "get", path="/version"), True),
            (q((U1, ("system:authenticated",)), "get", path="/apis"), True),
            (q((U1, ("system:unauthenticated",)), "get", path="/version"), True),
            (q((U1, ("system:unauthenticated",)), "get", path="/apis"), False),
            (q((U1, ()), "get", path="/version"), False),  # a review without groups has none
        ],
    )


# --- hand-picked: aggregation -------------------------------------------------------------------


def test_empty_aggregation_selector_selects_every_cluster_role(lab: Lab) -> None:
    world = [
        cluster_role("{p}everything", aggregationRule={"clusterRoleSelectors": [{}]}),
        binding("{p}crb", None, "ClusterRole", "{p}everything", user(U1)),
    ]
    world[0].pop("rules")
    outcome = both(
        lab,
        world,
        [
            (q(U1, "delete", "secrets", namespace="{b}"), True),  # cluster-admin's "*" included
            (q(U1, "frobnicate", "foos", namespace="", group="x.example.com"), True),
            (q(U1, "get", path="/anything"), True),
            (q(U2, "get"), False),
        ],
    )
    rules = outcome.state.cluster_role_rules(outcome.objects[0]["metadata"]["name"]) or ()
    assert rbac.PolicyRule(("*",), ("*",), ("*",)) in rules


def test_match_expressions_and_match_labels_are_anded_selectors_ored(lab: Lab) -> None:
    sel_both = {
        "matchLabels": {"diff.skycheck.test/tier": "x"},
        "matchExpressions": [
            {"key": "diff.skycheck.test/env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "diff.skycheck.test/off", "operator": "DoesNotExist"},
        ],
    }
    sel_other = {
        "matchExpressions": [{"key": "diff.skycheck.test/extra", "operator": "Exists"}],
    }

    def src(name: str, resource: str, **labels: str) -> dict[str, Any]:
        obj = cluster_role(name, rule("get", resource))
        obj["metadata"]["labels"] = {f"diff.skycheck.test/{k}": v for k, v in labels.items()}
        return obj

    world = [
        cluster_role("{p}agg", aggregationRule={"clusterRoleSelectors": [sel_both, sel_other]}),
        src("{p}m1", "m1s", tier="x", env="prod"),
        src("{p}m2", "m2s", tier="x", env="qa"),  # env not In
        src("{p}m3", "m3s", tier="x", env="dev", off="1"),  # off exists
        src("{p}m4", "m4s", extra=""),  # second selector
        binding("{p}crb", None, "ClusterRole", "{p}agg", user(U1)),
    ]
    both(
        lab,
        world,
        [
            (q(U1, "get", "m1s", namespace=""), True),
            (q(U1, "get", "m2s", namespace=""), False),
            (q(U1, "get", "m3s", namespace=""), False),
            (q(U1, "get", "m4s", namespace=""), True),
        ],
    )


def test_aggregation_feeds_the_bootstrap_view_edit_admin_chain(lab: Lab) -> None:
    feeder = cluster_role("{p}feeder", rule("get", "foos", "x.skycheck.test"))
    feeder["metadata"]["labels"] = {"rbac.authorization.k8s.io/aggregate-to-view": "true"}
    world = [
        feeder,
        binding("{p}rb", "{a}", "ClusterRole", "admin", user(U1)),  # admin > edit > view
        binding("{p}rb2", "{a}", "ClusterRole", "edit", user(U2)),
    ]
    both(
        lab,
        world,
        [
            (q(U1, "get", "foos", group="x.skycheck.test"), True),
            (q(U2, "get", "foos", group="x.skycheck.test"), True),
            (q(U1, "list", "foos", group="x.skycheck.test"), False),
            (q(U2, "get", "foos", namespace="{b}", group="x.skycheck.test"), False),
        ],
    )

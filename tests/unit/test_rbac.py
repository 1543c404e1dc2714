"""The offline RBAC evaluator against the semantics in shared/reference/rbac-semantics.md.

Each section follows a bullet of that page; the Kubernetes source each case encodes is cited
in skycheck/rbac.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skycheck import rbac
from skycheck.models import Subject
from skycheck.rbac import (
    ClusterRole,
    ClusterRoleBinding,
    LabelSelector,
    PolicyRule,
    RbacState,
    Role,
    RoleBinding,
    RoleRef,
    SelectorRequirement,
    SubjectRef,
)

SA = Subject.service_account("sky-sa", "default")
SA_USER, SA_GROUPS = SA.username, SA.groups


def rule(
    verbs: tuple[str, ...] = ("get",),
    groups: tuple[str, ...] = ("",),
    resources: tuple[str, ...] = ("pods",),
    names: tuple[str, ...] = (),
) -> PolicyRule:
    return PolicyRule(verbs=verbs, api_groups=groups, resources=resources, resource_names=names)


def user(name: str) -> SubjectRef:
    return SubjectRef("User", name, "", rbac.RBAC_GROUP)


def group(name: str) -> SubjectRef:
    return SubjectRef("Group", name, "", rbac.RBAC_GROUP)


def sa(name: str, namespace: str = "") -> SubjectRef:
    return SubjectRef("ServiceAccount", name, namespace)


def crb(name: str, role: str, *subjects: SubjectRef) -> ClusterRoleBinding:
    return ClusterRoleBinding(name, RoleRef("ClusterRole", role), subjects)


def rb(name: str, ns: str, kind: str, role: str, *subjects: SubjectRef) -> RoleBinding:
    return RoleBinding(name, ns, RoleRef(kind, role), subjects)


def allows(r: PolicyRule, verb: str = "get", group: str = "", resource: str = "pods",
           sub: str = "", name: str = "") -> bool:  # fmt: skip
    req = rbac.Request("u", (), verb, "ns", group, resource, sub, name)
    return rbac.rule_allows(req, r)


def alice_state(*rules: PolicyRule) -> RbacState:
    return RbacState([ClusterRole("r", rules), crb("b", "r", user("alice"))])


# --- rule matching -----------------------------------------------------------------------


class TestRuleMatching:
    def test_verb_exact_or_star(self) -> None:
        assert allows(rule(verbs=("get", "list")), verb="list")
        assert not allows(rule(verbs=("get", "list")), verb="watch")
        assert allows(rule(verbs=("*",)), verb="escalate")

    def test_api_group_exact_or_star_and_core_is_empty_string(self) -> None:
        assert allows(rule(groups=("",)), group="")
        assert not allows(rule(groups=("",)), group="apps")
        assert not allows(rule(groups=("apps",)), group="")
        assert allows(rule(groups=("*",)), group="apps")

    def test_resource_star_matches_subresources(self) -> None:
        assert allows(rule(resources=("*",)), resource="pods", sub="exec")
        assert allows(rule(resources=("*",)), resource="anything")

    def test_resource_exact_does_not_cover_subresource(self) -> None:
        assert allows(rule(resources=("pods",)), resource="pods")
        assert not allows(rule(resources=("pods",)), resource="pods", sub="exec")
        assert allows(rule(resources=("pods/exec",)), resource="pods", sub="exec")
        assert not allows(rule(resources=("pods/exec",)), resource="pods")

    def test_star_slash_subresource(self) -> None:
        assert allows(rule(resources=("*/scale",)), resource="deployments", sub="scale")
        assert not allows(rule(resources=("*/scale",)), resource="deployments")
        assert not allows(rule(resources=("*/scale",)), resource="deployments", sub="status")

    def test_pods_slash_star_is_not_a_wildcard(self) -> None:
        assert not allows(rule(resources=("pods/*",)), resource="pods", sub="exec")
        assert not allows(rule(resources=("pods/*",)), resource="pods")
        # It only matches a request whose subresource is literally "*".
        assert allows(rule(resources=("pods/*",)), resource="pods", sub="*")

    def test_resource_names(self) -> None:
        named = rule(verbs=("get", "list", "create"), names=("a",))
        assert allows(named, name="a")
        assert not allows(named, name="b")
        # Requests without a name (list, create...) never match a named rule.
        assert not allows(named, verb="list")
        assert not allows(named, verb="create")
        assert allows(rule(names=()), name="anything")

    def test_literal_empty_resource_name_matches_unnamed_requests(self) -> None:
        # ResourceNameMatches compares strings: a literal "" entry matches name "".
        assert allows(rule(verbs=("list",), names=("",)), verb="list")

    def test_non_resource_urls(self) -> None:
        def path_ok(urls: tuple[str, ...], path: str, verb: str = "get") -> bool:
            r = PolicyRule(verbs=("get",), non_resource_urls=urls)
            return rbac.rule_allows(
                rbac.Request("u", (), verb, path=path, resource_request=False), r
            )

        assert path_ok(("*",), "/anything")
        assert path_ok(("/healthz",), "/healthz")
        assert not path_ok(("/healthz",), "/healthz/etcd")
        assert path_ok(("/healthz*",), "/healthz/etcd")
        assert path_ok(("/healthz/*",), "/healthz/etcd")
        assert not path_ok(("/healthz/*",), "/healthz")
        assert path_ok(("/api**",), "/apis")  # every trailing * is trimmed
        assert not path_ok(("/healthz",), "/healthz", verb="post")

    def test_resource_rule_never_allows_a_path_and_vice_versa(self) -> None:
        r = rule(verbs=("*",), groups=("*",), resources=("*",))
        assert not rbac.rule_allows(
            rbac.Request("u", (), "get", path="/x", resource_request=False), r
        )
        url_rule = PolicyRule(verbs=("*",), non_resource_urls=("*",))
        assert not allows(url_rule)

    @pytest.mark.parametrize(
        ("field", "request_value"),
        [("verb", "*"), ("group", "*"), ("resource", "*")],
    )
    def test_wildcard_requests_match_only_literal_wildcards(
        self, field: str, request_value: str
    ) -> None:
        every_verb = (
            "get", "list", "watch", "create", "update", "patch", "delete", "deletecollection",
        )  # fmt: skip
        explicit = rule(verbs=every_verb, groups=("", "apps"), resources=("pods", "deployments"))
        kwargs: dict[str, Any] = {field: request_value}
        assert not allows(explicit, **kwargs)
        star = rule(verbs=("*",), groups=("*",), resources=("*",))
        assert allows(star, **kwargs)


# --- bindings and scope ------------------------------------------------------------------


class TestBindings:
    def test_no_bindings_no_opinion(self) -> None:
        result = RbacState([]).authorize("alice", (), "get", "", "pods", "", "default", "")
        assert result == rbac.AuthzResult(False, "", ())

    def test_cluster_role_binding_applies_everywhere(self) -> None:
        state = alice_state(rule())
        for ns in ("default", "other", ""):
            assert state.authorize("alice", (), "get", "", "pods", "", ns, "").allowed

    def test_role_binding_applies_only_in_its_namespace(self) -> None:
        state = RbacState([Role("r", "s1", (rule(),)), rb("b", "s1", "Role", "r", user("alice"))])
        assert state.authorize("alice", (), "get", "", "pods", "", "s1", "").allowed
        assert not state.authorize("alice", (), "get", "", "pods", "", "s2", "").allowed
        # Namespace "" means all namespaces: only cluster-wide grants count.
        assert not state.authorize("alice", (), "get", "", "pods", "", "", "").allowed

    def test_role_binding_to_cluster_role_is_scoped_to_the_binding_namespace(self) -> None:
        state = RbacState(
            [ClusterRole("c", (rule(),)), rb("b", "s1", "ClusterRole", "c", user("alice"))]
        )
        assert state.authorize("alice", (), "get", "", "pods", "", "s1", "").allowed
        assert not state.authorize("alice", (), "get", "", "pods", "", "s2", "").allowed
        assert not state.authorize("alice", (), "get", "", "pods", "", "", "").allowed

    def test_role_is_looked_up_in_the_binding_namespace(self) -> None:
        state = RbacState(
            [Role("r", "other", (rule(),)), rb("b", "s1", "Role", "r", user("alice"))]
        )
        result = state.authorize("alice", (), "get", "", "pods", "", "s1", "")
        assert not result.allowed
        assert result.evaluation_errors == ('role.rbac.authorization.k8s.io "r" not found',)

    def test_cluster_scoped_resource_checked_with_a_namespace_passes_through_role_binding(
        self,
    ) -> None:
        # Pitfall 3: a namespaced review of nodes comes back allowed through a RoleBinding,
        # while the real (cluster-scope) check is denied.
        nodes = rule(resources=("nodes",))
        state = RbacState(
            [ClusterRole("c", (nodes,)), rb("b", "s1", "ClusterRole", "c", user("alice"))]
        )
        assert state.authorize("alice", (), "get", "", "nodes", "", "s1", "").allowed
        assert not state.authorize("alice", (), "get", "", "nodes", "", "", "").allowed

    def test_rbac_never_denies(self) -> None:
        # An extra, unrelated binding (even a dangling one) cannot take a grant away.
        base = [ClusterRole("c", (rule(),)), crb("b", "c", user("alice"))]
        extra = [crb("a-dangling", "missing", user("alice")), rb("x", "default", "Role", "y")]
        assert RbacState(base + extra).authorize("alice", (), "get", "", "pods").allowed

    def test_later_object_replaces_earlier_one(self) -> None:
        state = RbacState(
            [
                ClusterRole("c", (rule(),)),
                crb("b", "c", user("alice")),
                ClusterRole("c", (rule(verbs=("list",)),)),
            ]
        )
        assert not state.authorize("alice", (), "get", "", "pods").allowed
        assert state.authorize("alice", (), "list", "", "pods").allowed

    def test_unsupported_role_ref_kind_is_an_error(self) -> None:
        state = RbacState([ClusterRoleBinding("b", RoleRef("Foo", "x"), (user("alice"),))])
        result = state.authorize("alice", (), "get", "", "pods")
        assert result.evaluation_errors == ('unsupported role reference kind: "Foo"',)


# --- subjects ----------------------------------------------------------------------------


class TestSubjects:
    def test_user_matches_exactly(self) -> None:
        state = alice_state(rule())
        assert state.authorize("alice", (), "get", "", "pods").allowed
        assert not state.authorize("Alice", (), "get", "", "pods").allowed
        assert not state.authorize("alice2", (), "get", "", "pods").allowed

    def test_group_membership(self) -> None:
        state = RbacState([ClusterRole("c", (rule(),)), crb("b", "c", group("devs"))])
        assert state.authorize("bob", ("x", "devs"), "get", "", "pods").allowed
        assert not state.authorize("devs", (), "get", "", "pods").allowed

    def test_service_account_with_namespace(self) -> None:
        state = RbacState([ClusterRole("c", (rule(),)), crb("b", "c", sa("sky-sa", "default"))])
        assert state.authorize(SA_USER, SA_GROUPS, "get", "", "pods", "", "x").allowed
        other = Subject.service_account("sky-sa", "other")
        assert not state.authorize(other.username, other.groups, "get", "", "pods").allowed

    def test_service_account_without_namespace_in_role_binding_takes_binding_namespace(
        self,
    ) -> None:
        objs = [Role("r", "default", (rule(),)), rb("b", "default", "Role", "r", sa("sky-sa"))]
        state = RbacState(objs)
        assert state.authorize(SA_USER, SA_GROUPS, "get", "", "pods", "", "default").allowed
        objs2 = [Role("r", "s1", (rule(),)), rb("b", "s1", "Role", "r", sa("sky-sa"))]
        other = RbacState(objs2)
        # The subject means s1/sky-sa, not default/sky-sa.
        assert not other.authorize(SA_USER, SA_GROUPS, "get", "", "pods", "", "s1").allowed
        s1 = Subject.service_account("sky-sa", "s1")
        assert other.authorize(s1.username, s1.groups, "get", "", "pods", "", "s1").allowed

    def test_service_account_without_namespace_in_cluster_role_binding_never_matches(
        self,
    ) -> None:
        # appliesToUser: saNamespace = "" for a ClusterRoleBinding -> false.
        state = RbacState([ClusterRole("c", (rule(),)), crb("b", "c", sa("sky-sa"))])
        for ns in ("default", ""):
            assert not state.authorize(SA_USER, SA_GROUPS, "get", "", "pods", "", ns).allowed
        assert not rbac.applies_to_user(SA_USER, SA_GROUPS, sa("sky-sa"), "")

    def test_subject_api_group_is_not_checked(self) -> None:
        odd = [
            SubjectRef("User", "alice", "", "example.com"),
            SubjectRef("ServiceAccount", "sky-sa", "default", "rbac.authorization.k8s.io"),
        ]
        state = RbacState([ClusterRole("c", (rule(),)), crb("b", "c", *odd)])
        assert state.authorize("alice", (), "get", "", "pods").allowed
        assert state.authorize(SA_USER, (), "get", "", "pods").allowed

    def test_user_subject_with_service_account_name_matches_that_account(self) -> None:
        state = RbacState(
            [
                ClusterRole("c", (rule(),)),
                crb("b", "c", user("system:serviceaccount:default:sky-sa")),
            ]
        )
        assert state.authorize(SA_USER, SA_GROUPS, "get", "", "pods").allowed

    def test_service_account_groups_grant(self) -> None:
        for g in (
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated",
        ):
            state = RbacState([ClusterRole("c", (rule(),)), crb("b", "c", group(g))])
            assert state.authorize(SA_USER, SA_GROUPS, "get", "", "pods").allowed
            # Without the groups (a SubjectAccessReview that forgot them) it is denied.
            assert not state.authorize(SA_USER, (), "get", "", "pods").allowed

    def test_unknown_subject_kind_never_matches(self) -> None:
        state = RbacState(
            [ClusterRole("c", (rule(),)), crb("b", "c", SubjectRef("Robot", "alice"))]
        )
        assert not state.authorize("alice", (), "get", "", "pods").allowed

    def test_system_masters_bypasses_rbac(self) -> None:
        result = RbacState([]).authorize("root", ("system:masters",), "escalate", "x", "y")
        assert result.allowed
        assert "system:masters" in result.reason


# --- reasons and errors ------------------------------------------------------------------


class TestReasons:
    def test_cluster_role_binding_reason(self) -> None:
        result = alice_state(rule()).authorize("alice", (), "get", "", "pods")
        assert (
            result.reason
            == 'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to User "alice"'
        )

    def test_role_binding_reason_names_sa_as_name_slash_namespace(self) -> None:
        state = RbacState(
            [Role("r", "default", (rule(),)), rb("rb", "default", "Role", "r", sa("sky-sa"))]
        )
        result = state.authorize(SA_USER, SA_GROUPS, "get", "", "pods", "", "default")
        assert result.reason == (
            'RBAC: allowed by RoleBinding "rb/default" of Role "r" '
            'to ServiceAccount "sky-sa/default"'
        )

    def test_reason_names_first_applicable_subject(self) -> None:
        state = RbacState(
            [ClusterRole("c", (rule(),)), crb("b", "c", user("bob"), group("devs"), user("alice"))]
        )
        result = state.authorize("alice", ("devs",), "get", "", "pods")
        assert result.reason.endswith('to Group "devs"')

    def test_cluster_role_bindings_are_visited_before_role_bindings(self) -> None:
        state = RbacState(
            [
                ClusterRole("c", (rule(),)),
                rb("a-rb", "default", "ClusterRole", "c", user("alice")),
                crb("z-crb", "c", user("alice")),
            ]
        )
        assert (
            'ClusterRoleBinding "z-crb"'
            in state.authorize("alice", (), "get", "", "pods", "", "default").reason
        )

    def test_dangling_role_refs_are_evaluation_errors_in_the_reason(self) -> None:
        state = RbacState(
            [
                crb("b1", "missing", user("alice")),
                crb("b2", "missing", user("alice")),
                rb("b3", "default", "Role", "gone", user("alice")),
                crb("unrelated", "absent", user("bob")),
            ]
        )
        result = state.authorize("alice", (), "get", "", "pods", "", "default")
        assert not result.allowed
        assert result.evaluation_errors == (
            'clusterrole.rbac.authorization.k8s.io "missing" not found',
            'clusterrole.rbac.authorization.k8s.io "missing" not found',
            'role.rbac.authorization.k8s.io "gone" not found',
        )
        # utilerrors.NewAggregate de-duplicates messages.
        assert result.reason == (
            'RBAC: [clusterrole.rbac.authorization.k8s.io "missing" not found, '
            'role.rbac.authorization.k8s.io "gone" not found]'
        )
        single = RbacState([crb("b1", "missing", user("alice"))]).authorize(
            "alice", (), "get", "", "pods"
        )
        assert single.reason == 'RBAC: clusterrole.rbac.authorization.k8s.io "missing" not found'

    def test_dangling_bindings_listing(self) -> None:
        state = RbacState(
            [crb("b1", "missing", user("alice")), rb("b3", "ns", "Role", "gone", user("bob"))]
        )
        assert state.dangling_bindings() == (
            "ClusterRoleBinding b1 references missing ClusterRole missing",
            "RoleBinding b3 in namespace ns references missing Role gone",
        )
        assert state.dangling_bindings("bob", ()) == (
            "RoleBinding b3 in namespace ns references missing Role gone",
        )

    def test_go_quote(self) -> None:
        assert rbac._go_quote('a"b\\c\n') == '"a\\"b\\\\c\\n"'


# --- aggregation -------------------------------------------------------------------------

AGG_EDIT = (("rbac.authorization.k8s.io/aggregate-to-edit", "true"),)


def selector(**labels: str) -> LabelSelector:
    return LabelSelector(match_labels=tuple(sorted(labels.items())))


class TestAggregation:
    def test_union_of_matching_roles_overwrites_hand_written_rules(self) -> None:
        a, b, hand = rule(resources=("a",)), rule(resources=("b",)), rule(resources=("hand",))
        state = RbacState(
            [
                ClusterRole("agg", (hand,), aggregation=(selector(x="1"),)),
                ClusterRole("src2", (b, a), labels=(("x", "1"),)),
                ClusterRole("src1", (a,), labels=(("x", "1"),)),
                ClusterRole("other", (rule(resources=("c",)),), labels=(("x", "2"),)),
            ]
        )
        # Sorted by name (src1 before src2), de-duplicated, hand-written rule gone.
        assert state.cluster_role_rules("agg") == (a, b)

    def test_excludes_itself_and_rules_null_is_valid(self) -> None:
        state = RbacState(
            [
                ClusterRole("agg", (), labels=(("x", "1"),), aggregation=(selector(x="1"),)),
                ClusterRole("src", (rule(),), labels=(("x", "1"),)),
            ]
        )
        assert state.cluster_role_rules("agg") == (rule(),)

    def test_no_match_keeps_hand_written_rules(self) -> None:
        # The controller's server-side apply of an empty rule list leaves ``rules`` alone
        # (tests/differential/test_regressions.py has the live proof).
        state = RbacState([ClusterRole("agg", (rule(),), aggregation=(selector(nope="1"),))])
        assert state.cluster_role_rules("agg") == (rule(),)
        empty = RbacState([ClusterRole("agg", (), aggregation=(selector(nope="1"),))])
        assert empty.cluster_role_rules("agg") == ()

    def test_empty_selector_matches_every_cluster_role(self) -> None:
        state = RbacState(
            [
                ClusterRole("agg", (), aggregation=(LabelSelector(),)),
                ClusterRole("plain", (rule(resources=("p",)),)),
                ClusterRole("labelled", (rule(resources=("l",)),), labels=(("a", "b"),)),
            ]
        )
        assert state.cluster_role_rules("agg") == (
            rule(resources=("l",)),
            rule(resources=("p",)),
        )

    def test_selectors_are_ored_and_labels_and_expressions_anded(self) -> None:
        both = LabelSelector(
            match_labels=(("tier", "x"),),
            match_expressions=(SelectorRequirement("env", "In", ("prod", "dev")),),
        )
        state = RbacState(
            [
                ClusterRole("agg", (), aggregation=(both, selector(extra="yes"))),
                ClusterRole(
                    "m1", (rule(resources=("m1",)),), labels=(("tier", "x"), ("env", "prod"))
                ),
                ClusterRole(
                    "m2", (rule(resources=("m2",)),), labels=(("tier", "x"), ("env", "qa"))
                ),
                ClusterRole("m3", (rule(resources=("m3",)),), labels=(("extra", "yes"),)),
            ]
        )
        assert state.cluster_role_rules("agg") == (rule(resources=("m1",)), rule(resources=("m3",)))

    @pytest.mark.parametrize(
        ("expr", "expected"),
        [
            (SelectorRequirement("k", "In", ("a",)), {"in_a"}),
            (SelectorRequirement("k", "NotIn", ("a",)), {"in_b", "none"}),
            (SelectorRequirement("k", "Exists"), {"in_a", "in_b"}),
            (SelectorRequirement("k", "DoesNotExist"), {"none"}),
        ],
    )
    def test_match_expression_operators(
        self, expr: SelectorRequirement, expected: set[str]
    ) -> None:
        roles = {"in_a": (("k", "a"),), "in_b": (("k", "b"),), "none": ()}
        objs: list[rbac.RbacObject] = [
            ClusterRole("agg", (), aggregation=(LabelSelector(match_expressions=(expr,)),))
        ]
        objs += [ClusterRole(n, (rule(resources=(n,)),), labels=lab) for n, lab in roles.items()]
        got = {r.resources[0] for r in RbacState(objs).cluster_role_rules("agg") or ()}
        assert got == expected

    def test_chains_converge_like_view_edit_admin(self) -> None:
        to_admin = ("aggregate-to-admin", "true")
        to_edit = ("aggregate-to-edit", "true")
        state = RbacState(
            [
                # Deliberately listed so a single pass in name order would miss the chain.
                ClusterRole(
                    "a-admin", (), aggregation=(selector(**{"aggregate-to-admin": "true"}),)
                ),
                ClusterRole(
                    "b-edit",
                    (),
                    labels=(to_admin,),
                    aggregation=(selector(**{"aggregate-to-edit": "true"}),),
                ),
                ClusterRole(
                    "c-view",
                    (),
                    labels=(to_edit,),
                    aggregation=(selector(**{"aggregate-to-view": "true"}),),
                ),
                ClusterRole(
                    "d-src", (rule(resources=("deep",)),), labels=(("aggregate-to-view", "true"),)
                ),
                ClusterRole("e-src", (rule(resources=("edit-only",)),), labels=(to_edit,)),
            ]
        )
        assert state.cluster_role_rules("c-view") == (rule(resources=("deep",)),)
        assert set(state.cluster_role_rules("b-edit") or ()) == {
            rule(resources=("deep",)),
            rule(resources=("edit-only",)),
        }
        assert set(state.cluster_role_rules("a-admin") or ()) == set(
            state.cluster_role_rules("b-edit") or ()
        )
        assert state.warnings == ()

    def test_cycles_converge_and_warn(self) -> None:
        state = RbacState(
            [
                ClusterRole(
                    "x",
                    (rule(resources=("hx",)),),
                    labels=(("g", "x"),),
                    aggregation=(selector(g="y"),),
                ),
                ClusterRole(
                    "y",
                    (rule(resources=("hy",)),),
                    labels=(("g", "y"),),
                    aggregation=(selector(g="x"),),
                ),
            ]
        )
        # Order-dependent on a cluster: whichever syncs first takes the other's hand-written
        # rules, and then both hold them. Never empty. In name order: x first.
        assert (
            state.cluster_role_rules("x")
            == state.cluster_role_rules("y")
            == (rule(resources=("hy",)),)
        )
        assert len(state.warnings) == 1 and "x, y" in state.warnings[0]

    def test_invalid_selector_keeps_hand_written_rules(self) -> None:
        bad = LabelSelector(match_expressions=(SelectorRequirement("k", "Gt", ("1",)),))
        state = RbacState([ClusterRole("agg", (rule(),), aggregation=(bad,))])
        assert state.cluster_role_rules("agg") == (rule(),)

    def test_bound_aggregated_role_grants_the_union(self) -> None:
        state = RbacState(
            [
                ClusterRole("agg", (), aggregation=(selector(x="1"),)),
                ClusterRole(
                    "src",
                    (rule(verbs=("create",), resources=("pods/exec",)),),
                    labels=(("x", "1"),),
                ),
                rb("b", "default", "ClusterRole", "agg", user("alice")),
            ]
        )
        assert state.authorize("alice", (), "create", "", "pods", "exec", "default").allowed


# --- the bootstrap policy ----------------------------------------------------------------


@pytest.fixture(scope="module")
def bootstrap_state() -> RbacState:
    return RbacState.with_bootstrap([])


class TestBootstrap:
    def test_data_is_from_kubernetes_1_37(self) -> None:
        policy = rbac.bootstrap_policy()
        assert policy.kubernetes_version.startswith("v1.37.")
        names = {o.name for o in policy.objects if isinstance(o, ClusterRole)}
        assert {"admin", "edit", "view", "cluster-admin", "system:basic-user"} <= names

    def test_every_authenticated_identity_has_default_grants(
        self, bootstrap_state: RbacState
    ) -> None:
        s = bootstrap_state
        for r in ("selfsubjectaccessreviews", "selfsubjectrulesreviews"):
            assert s.authorize(SA_USER, SA_GROUPS, "create", "authorization.k8s.io", r).allowed
        assert s.authorize(
            SA_USER, SA_GROUPS, "create", "authentication.k8s.io", "selfsubjectreviews"
        ).allowed
        assert s.authorize_path(SA_USER, SA_GROUPS, "get", "/apis").allowed  # system:discovery
        assert s.authorize_path(SA_USER, SA_GROUPS, "get", "/version").allowed  # public-info-viewer
        assert s.authorize_path("nobody", ("system:unauthenticated",), "get", "/healthz").allowed
        # Service accounts also get the issuer discovery endpoints.
        assert s.authorize_path(SA_USER, SA_GROUPS, "get", "/openid/v1/jwks").allowed
        assert not s.authorize_path(
            "alice", ("system:authenticated",), "get", "/openid/v1/jwks"
        ).allowed
        # ...but nothing else.
        assert not s.authorize(SA_USER, SA_GROUPS, "get", "", "pods", "", "default").allowed
        assert not s.authorize(
            "anyone", (), "create", "authorization.k8s.io", "selfsubjectaccessreviews"
        ).allowed

    def test_edit_view_admin_cluster_admin(self) -> None:
        objs = [
            rb("e", "dev", "ClusterRole", "edit", user("e")),
            rb("v", "dev", "ClusterRole", "view", user("v")),
            rb("a", "dev", "ClusterRole", "admin", user("a")),
            crb("ca", "cluster-admin", user("root")),
        ]
        s = RbacState.with_bootstrap(objs)
        assert s.authorize("e", (), "create", "apps", "deployments", "", "dev").allowed
        assert s.authorize("e", (), "create", "", "pods", "exec", "dev").allowed
        assert not s.authorize(
            "e", (), "create", "rbac.authorization.k8s.io", "rolebindings", "", "dev"
        ).allowed
        assert not s.authorize("e", (), "create", "apps", "deployments", "", "prod").allowed
        assert s.authorize("v", (), "list", "", "pods", "", "dev").allowed
        assert not s.authorize("v", (), "get", "", "secrets", "", "dev").allowed
        assert not s.authorize("v", (), "create", "", "pods", "", "dev").allowed
        assert s.authorize(
            "a", (), "create", "rbac.authorization.k8s.io", "rolebindings", "", "dev"
        ).allowed
        assert s.authorize("root", (), "delete", "", "nodes").allowed
        assert s.authorize_path("root", (), "get", "/metrics").allowed

    def test_manifest_aggregating_into_edit(self) -> None:
        extra = ClusterRole(
            "sky-extra",
            (rule(verbs=("get",), groups=("example.com",), resources=("widgets",)),),
            labels=AGG_EDIT,
        )
        s = RbacState.with_bootstrap([extra, rb("e", "dev", "ClusterRole", "edit", user("e"))])
        assert s.authorize("e", (), "get", "example.com", "widgets", "", "dev").allowed
        # admin aggregates edit (through aggregate-to-admin) and so gets it too.
        assert extra.rules[0] in (s.cluster_role_rules("admin") or ())

    def test_is_bootstrap(self) -> None:
        mine = ClusterRole("mine")
        s = RbacState.with_bootstrap([mine])
        assert s.is_bootstrap(s.cluster_role("view") or mine)
        assert not s.is_bootstrap(mine)


# --- explanations ------------------------------------------------------------------------


def explain(state: RbacState, verb: str, res: str, sub: str = "", ns: str = "s1",
            name: str = "", group_: str = "") -> tuple[str, ...]:  # fmt: skip
    return rbac.explain_denial(state, SA_USER, SA_GROUPS, verb, group_, res, sub, ns, name)


class TestExplain:
    def test_subresource_missing(self) -> None:
        s = RbacState(
            [Role("sky-sa-role", "s1", (rule(verbs=("*",)),)),
             rb("rb", "s1", "Role", "sky-sa-role", sa("sky-sa", "default"))]
        )  # fmt: skip
        assert explain(s, "create", "pods", "exec") == (
            "Role sky-sa-role in namespace s1 grants pods but not pods/exec",
        )

    def test_pods_star(self) -> None:
        s = RbacState(
            [Role("r", "s1", (rule(verbs=("*",), resources=("pods/*",)),)),
             rb("rb", "s1", "Role", "r", sa("sky-sa", "default"))]
        )  # fmt: skip
        (line,) = explain(s, "create", "pods", "exec")
        assert "pods/* which is not a wildcard" in line.replace(",", "")

    def test_role_binding_in_other_namespace(self) -> None:
        s = RbacState(
            [Role("r", "X", (rule(),)), rb("sky-sa-rb", "X", "Role", "r", sa("sky-sa", "default"))]
        )
        assert explain(s, "get", "pods", ns="Y") == (
            "RoleBinding sky-sa-rb is in namespace X, the check is in Y",
        )
        assert explain(s, "get", "pods", ns="")[0].startswith(
            "RoleBinding sky-sa-rb is in namespace X, the check is cluster-wide"
        )

    def test_cluster_role_through_role_binding(self) -> None:
        s = RbacState(
            [ClusterRole("sky-sa-cluster-role", (rule(resources=("nodes",)),)),
             rb("rb", "X", "ClusterRole", "sky-sa-cluster-role", sa("sky-sa", "default"))]
        )  # fmt: skip
        assert explain(s, "get", "nodes", ns="") == (
            "ClusterRole sky-sa-cluster-role bound by RoleBinding rb applies only in namespace X, "
            "the check is cluster-wide",
        )

    def test_resource_names(self) -> None:
        s = RbacState(
            [Role("r", "s1", (rule(verbs=("get", "list", "create"), names=("a",)),)),
             rb("rb", "s1", "Role", "r", sa("sky-sa", "default"))]
        )  # fmt: skip
        assert explain(s, "list", "pods") == (
            "Role r in namespace s1 grants pods only for resourceNames [a]; "
            "resourceNames never grant list/create",
        )
        assert explain(s, "get", "pods", name="b") == (
            "Role r in namespace s1 grants pods only for resourceNames [a], not b",
        )

    def test_missing_role(self) -> None:
        s = RbacState([rb("rb", "s1", "Role", "r", sa("sky-sa", "default"))])
        assert explain(s, "get", "pods") == (
            "RoleBinding rb in namespace s1 references missing Role r",
        )

    def test_verb_and_group(self) -> None:
        s = RbacState(
            [
                ClusterRole(
                    "c",
                    (
                        rule(verbs=("get", "list")),
                        rule(groups=("extensions",), resources=("deployments",)),
                    ),
                ),
                crb("b", "c", sa("sky-sa", "default")),
            ]
        )
        assert explain(s, "delete", "pods") == (
            "ClusterRole c grants pods for get, list but not delete",
        )
        assert explain(s, "get", "deployments", group_="apps") == (
            "ClusterRole c grants deployments in apiGroups [extensions], not apps",
        )

    def test_subject_near_misses(self) -> None:
        c = ClusterRole("c", (rule(),))
        wrong_ns = RbacState([c, rb("b", "s1", "ClusterRole", "c", sa("sky-sa", "other"))])
        assert explain(wrong_ns, "get", "pods") == (
            "RoleBinding b in namespace s1 binds ServiceAccount other/sky-sa, "
            "not ServiceAccount default/sky-sa",
        )
        no_ns = RbacState([c, crb("b", "c", sa("sky-sa"))])
        assert "without a namespace" in explain(no_ns, "get", "pods")[0]
        as_user = RbacState([c, crb("b", "c", user("sky-sa"))])
        assert explain(as_user, "get", "pods")[0].startswith(
            "ClusterRoleBinding b binds User sky-sa, not ServiceAccount default/sky-sa"
        )

    def test_nothing_close_and_allowed_requests(self) -> None:
        s = RbacState(
            [
                ClusterRole("c", (rule(resources=("secrets",)),)),
                crb("b", "c", sa("sky-sa", "default")),
            ]
        )
        assert explain(s, "get", "pods") == ()
        assert explain(s, "get", "secrets") == ()  # allowed: nothing to explain

    def test_nearest_first_and_deterministic(self) -> None:
        objs: list[rbac.RbacObject] = [
            Role("r", "s1", (rule(verbs=("list",)),)),
            rb("rb", "s1", "Role", "r", sa("sky-sa", "default")),
            Role("r", "s2", (rule(),)),
            rb("rb2", "s2", "Role", "r", sa("sky-sa", "default")),
            rb("rb3", "s1", "Role", "missing", sa("sky-sa", "default")),
        ]
        first = explain(RbacState(objs), "get", "pods")
        assert first == (
            "RoleBinding rb2 is in namespace s2, the check is in s1",
            "RoleBinding rb3 in namespace s1 references missing Role missing",
            "Role r in namespace s1 grants pods for list but not get",
        )
        assert explain(RbacState(list(reversed(objs))), "get", "pods") == first


# --- parsing -----------------------------------------------------------------------------


def doc(kind: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "x"}
    if kind in ("Role", "RoleBinding"):
        meta["namespace"] = "ns"
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, **extra}


REF = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "c"}


class TestParse:
    def test_round_trip_and_defaults(self) -> None:
        obj = rbac.parse_object(
            doc("RoleBinding", roleRef={"kind": "Role", "name": "r"},
                subjects=[{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s"}])
        )  # fmt: skip
        assert obj == RoleBinding(
            "x", "ns", RoleRef("Role", "r", rbac.RBAC_GROUP),
            (SubjectRef("User", "u", "", rbac.RBAC_GROUP), SubjectRef("ServiceAccount", "s")),
        )  # fmt: skip
        cr = rbac.parse_object(
            doc("ClusterRole", rules=None, aggregationRule={"clusterRoleSelectors": [{}]})
        )
        assert cr == ClusterRole("x", (), (), (LabelSelector(),))

    @pytest.mark.parametrize(
        ("obj", "message"),
        [
            (
                doc("Role", rules=[{"verbs": "get", "apiGroups": [""], "resources": ["pods"]}]),
                "rules[0].verbs must be a list of strings",
            ),
            (
                doc("Role", rules=[{"verbs": [], "apiGroups": [""], "resources": ["pods"]}]),
                "rules[0].verbs must contain at least one value",
            ),
            (doc("Role", rules=[{"verbs": ["get"], "resources": ["pods"]}]), "rules[0].apiGroups"),
            (doc("Role", rules=[{"verbs": ["get"], "apiGroups": [""]}]), "rules[0].resources"),
            (
                doc("Role", rules=[{"verbs": ["get"], "nonResourceURLs": ["/x"]}]),
                "a Role cannot grant non-resource URLs",
            ),
            (
                doc(
                    "ClusterRole",
                    rules=[{"verbs": ["get"], "nonResourceURLs": ["/x"], "resources": ["p"]}],
                ),
                "both resources and non-resource URLs",
            ),
            (
                doc(
                    "Role",
                    rules=[
                        {
                            "verbs": ["get"],
                            "apiGroups": [""],
                            "resources": ["p"],
                            "resourceName": ["a"],
                        }
                    ],
                ),
                "rules[0].resourceName is not a known field",
            ),
            (doc("Role", rules={"verbs": ["get"]}), "rules must be a list"),
            (
                doc("ClusterRole", metadata={"name": "x", "labels": {"a": True}}),
                "metadata.labels.a must be a string",
            ),
            (
                doc("ClusterRole", metadata={"name": "a/b"}),
                "metadata.name 'a/b' may not contain '/'",
            ),
            (doc("ClusterRole", metadata={}), "metadata.name is required"),
            (
                doc("ClusterRole", aggregationRule={"clusterRoleSelectors": []}),
                "at least one selector",
            ),
            (
                doc(
                    "ClusterRole",
                    aggregationRule={
                        "clusterRoleSelectors": [
                            {"matchExpressions": [{"key": "k", "operator": "In"}]}
                        ]
                    },
                ),
                "values must be set",
            ),
            (
                doc(
                    "ClusterRole",
                    aggregationRule={
                        "clusterRoleSelectors": [
                            {"matchExpressions": [{"key": "k", "operator": "Gt", "values": ["1"]}]}
                        ]
                    },
                ),
                "operator 'Gt'",
            ),
            (
                doc("ClusterRoleBinding", roleRef={"kind": "Role", "name": "r"}),
                "can only reference a ClusterRole",
            ),
            (doc("ClusterRoleBinding", roleRef={**REF, "apiGroup": "x"}), "roleRef.apiGroup"),
            (doc("ClusterRoleBinding"), "roleRef is required"),
            (
                doc(
                    "ClusterRoleBinding",
                    roleRef=REF,
                    subjects=[{"kind": "ServiceAccount", "name": "s"}],
                ),
                "subjects[0].namespace is required for a ServiceAccount in a ClusterRoleBinding",
            ),
            (
                doc(
                    "RoleBinding",
                    roleRef=REF,
                    subjects=[{"kind": "ServiceAccount", "name": "s", "apiGroup": "x"}],
                ),
                "subjects[0].apiGroup must be empty",
            ),
            (
                doc(
                    "RoleBinding",
                    roleRef=REF,
                    subjects=[{"kind": "User", "name": "u", "apiGroup": "x"}],
                ),
                "subjects[0].apiGroup must be rbac.authorization.k8s.io",
            ),
            (
                doc("RoleBinding", roleRef=REF, subjects=[{"kind": "Robot", "name": "u"}]),
                "subjects[0].kind 'Robot'",
            ),
            (
                doc("RoleBinding", roleRef=REF, subjects=[{"kind": "User"}]),
                "subjects[0].name is required",
            ),
            (
                doc(
                    "RoleBinding",
                    roleRef=REF,
                    subjects=[{"kind": "ServiceAccount", "name": "Bad_Name"}],
                ),
                "subjects[0].name 'Bad_Name' must be a lowercase RFC 1123 subdomain",
            ),
            (
                doc("RoleBinding", roleRef=REF, subjects=[{"kind": "User", "name": 5}]),
                "subjects[0].name must be a string, not a number",
            ),
            (doc("Role", status={}), "status is not a known field"),
        ],
    )
    def test_invalid_objects(self, obj: dict[str, Any], message: str) -> None:
        with pytest.raises(rbac.InvalidObjectError) as exc:
            rbac.parse_object(obj)
        assert message in str(exc.value)

    def test_namespace_default_and_cluster_scope(self) -> None:
        d = doc("Role")
        del d["metadata"]["namespace"]
        with pytest.raises(rbac.InvalidObjectError, match=r"metadata\.namespace is required"):
            rbac.parse_object(d)
        assert rbac.parse_object(d, default_namespace="dflt") == Role("x", "dflt")
        cr = doc("ClusterRole")
        cr["metadata"]["namespace"] = "ignored"
        assert rbac.parse_object(cr) == ClusterRole("x")

    def test_bootstrap_json_is_sorted_and_valid(self) -> None:
        from importlib import resources

        data = json.loads(
            resources.files("skycheck").joinpath("data/bootstrap-rbac.json").read_text()
        )
        assert data["placeholder"] is False, "regenerate with scripts/gen_bootstrap_rbac.py"
        order = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
        keys = [
            (order.index(i["kind"]), i["metadata"].get("namespace", ""), i["metadata"]["name"])
            for i in data["items"]
        ]
        assert keys == sorted(keys)
        kinds = {i["kind"] for i in data["items"]}
        assert kinds == set(order)


# --- properties and speed ----------------------------------------------------------------

names = st.sampled_from(["a", "b", "pods", "pods/exec", "*", "*/exec", "pods/*", ""])
verbs = st.sampled_from(["get", "list", "create", "*"])
rules_st = st.builds(
    PolicyRule,
    verbs=st.tuples(verbs),
    api_groups=st.tuples(st.sampled_from(["", "apps", "*"])),
    resources=st.lists(names, min_size=1, max_size=3).map(tuple),
    resource_names=st.lists(st.sampled_from(["a", "b"]), max_size=2).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(
    base=st.lists(rules_st, max_size=4),
    extra=st.lists(rules_st, max_size=4),
    verb=verbs,
    group_=st.sampled_from(["", "apps"]),
    res=st.sampled_from(["pods", "a"]),
    sub=st.sampled_from(["", "exec", "*"]),
    name=st.sampled_from(["", "a"]),
)
def test_more_rules_never_deny(
    base: list[PolicyRule],
    extra: list[PolicyRule],
    verb: str,
    group_: str,
    res: str,
    sub: str,
    name: str,
) -> None:
    """RBAC is additive: adding a role never turns an allow into a deny."""
    one = RbacState([ClusterRole("c", tuple(base)), crb("b", "c", user("u"))])
    two = RbacState(
        [ClusterRole("c", tuple(base)), crb("b", "c", user("u")),
         ClusterRole("d", tuple(extra)), crb("b2", "d", user("u"))]
    )  # fmt: skip
    first = one.authorize("u", (), verb, group_, res, sub, "ns", name).allowed
    second = two.authorize("u", (), verb, group_, res, sub, "ns", name).allowed
    assert not first or second
    # And the decision equals "some rule allows" (the visitor's definition).
    req = rbac.Request("u", (), verb, "ns", group_, res, sub, name)
    assert second == any(rbac.rule_allows(req, r) for r in (*base, *extra))


def test_ten_thousand_objects_evaluate_fast() -> None:
    objs: list[rbac.RbacObject] = []
    for i in range(2500):
        ns = f"ns-{i % 50}"
        objs.append(
            Role(f"r{i}", ns, (rule(verbs=("get", "create"), resources=("pods", "pods/exec")),))
        )
        objs.append(rb(f"rb{i}", ns, "Role", f"r{i}", sa(f"sa-{i}"), group(f"g{i % 100}")))
        objs.append(ClusterRole(f"c{i}", (rule(resources=("nodes",)),)))
        objs.append(crb(f"crb{i}", f"c{i}", user(f"user-{i}")))
    start = time.perf_counter()
    state = RbacState.with_bootstrap(objs)
    built = time.perf_counter() - start
    start = time.perf_counter()
    allowed = 0
    for i in range(2000):
        ns = f"ns-{i % 50}"
        u = f"system:serviceaccount:{ns}:sa-{i}"
        allowed += state.authorize(
            u, ("system:authenticated",), "create", "", "pods", "exec", ns
        ).allowed
        allowed += state.authorize(f"user-{i}", (), "get", "", "nodes").allowed
    spent = time.perf_counter() - start
    assert allowed == 4000
    # Generous bounds (shared CI machines): a linear scan per request would take far longer.
    assert built < 5.0
    assert spent < 3.0, f"4000 decisions took {spent:.2f}s"


def test_equal_rules_are_one_object_and_still_validated_each_time() -> None:
    """parse_object shares one PolicyRule among equal rules (records are immutable), keeps no
    more than a bounded number, and still refuses a shared rule where it is not allowed."""
    from skycheck.rbac import parse

    def role(kind: str, name: str, rule: dict[str, Any]) -> dict[str, Any]:
        meta = {"name": name, "namespace": "ns"} if kind == "Role" else {"name": name}
        return {
            "apiVersion": rbac.RBAC_API_VERSION,
            "kind": kind,
            "metadata": meta,
            "rules": [rule],
        }

    pods = {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}
    a = rbac.parse_object(role("Role", "a", dict(pods)))
    b = rbac.parse_object(role("ClusterRole", "b", dict(pods)))
    assert isinstance(a, rbac.Role) and isinstance(b, rbac.ClusterRole)
    assert a.rules == b.rules and a.rules[0] is b.rules[0]
    urls = {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}
    assert rbac.parse_object(role("ClusterRole", "c", urls)).rules[0].non_resource_urls == (
        "/healthz",
    )
    with pytest.raises(rbac.InvalidObjectError, match="a Role cannot grant non-resource URLs"):
        rbac.parse_object(role("Role", "d", urls))
    for i in range(parse._RULES_KEPT + 10):
        rbac.parse_object(role("Role", "e", {**pods, "verbs": [f"verb-{i}"]}))
        assert len(parse._RULES) <= parse._RULES_KEPT

"""Audit-event normalisation and grant planning, on hand-made events (no lab needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.skypilot.inventory import _verdict, by_name, grants_for
from tests.skypilot.lab import Identity
from tests.skypilot.runner import (
    Outcome,
    Permission,
    Request,
    Run,
    _classify,
    _made_first_exec,
    _requests,
    _scrub,
    fixed_name,
    scope_of,
)

NS = "sky-abc123"


def _event(audit_id: str, verb: str, code: int, **ref: str) -> dict[str, Any]:
    return {"auditID": audit_id, "verb": verb, "responseStatus": {"code": code}, "objectRef": ref}


def test_cluster_scoped_create_showing_a_namespace_is_cluster_scope() -> None:
    # The apiserver can log the request's namespace for a ClusterRole create.
    events = [
        _event(
            "a",
            "create",
            201,
            resource="clusterroles",
            namespace="default",
            apiGroup="rbac.authorization.k8s.io",
            name="skypilot-service-account-cluster-role",
        )
    ]

    [request] = _requests(events, NS)

    assert request.scope == "cluster"
    assert request.namespace == ""
    assert request.name == "skypilot-service-account-cluster-role"


def test_exec_logged_twice_counts_once() -> None:
    started = _event(
        "x", "get", 101, resource="pods", subresource="exec", namespace=NS, name="skylab-abcd-head"
    )

    requests = _requests([started, started], NS)

    assert len(requests) == 1
    assert requests[0].permission() == Permission("namespace", "", "pods", "exec", "get")


def test_scopes_and_names() -> None:
    assert scope_of("pods", NS, NS) == "namespace"
    assert scope_of("roles", "skypilot-system", NS) == "skypilot-system"
    assert scope_of("services", "ingress-nginx", NS) == "ingress-nginx"
    assert scope_of("pods", "", NS) == "cluster"
    assert scope_of("configmaps", "kube-system", NS) == "other:kube-system"
    assert fixed_name("skypilot-service-account", NS) == "skypilot-service-account"
    assert fixed_name(NS, NS) == "$NAMESPACE"
    assert fixed_name("skylab-abcd1234-head", NS) is None


def test_non_resource_requests_are_kept_apart() -> None:
    events = [
        {
            "auditID": "n",
            "verb": "get",
            "requestURI": "/apis?timeout=32s",
            "responseStatus": {"code": 200},
        }
    ]

    [request] = _requests(events, NS)

    assert request.scope == "nonresource"
    assert request.name == "/apis"


def test_classify() -> None:
    forbidden = Request("create", "", "pods", "", NS, None, 403, "namespace")
    ok = Request("list", "", "nodes", "", "", None, 200, "cluster")
    assert _classify(0, False, "", [ok, forbidden])[0] is Outcome.COMPLETED
    assert _classify(1, False, "", [ok, forbidden])[0] is Outcome.FORBIDDEN
    assert (
        _classify(1, False, "error: no exec found for container", [ok])[0]
        is Outcome.STOPPED_AT_EXEC
    )
    assert _classify(1, False, "boom", [ok]) == (Outcome.ERROR, "boom")
    assert _classify(-9, True, "", [ok])[0] is Outcome.TIMEOUT


def test_grants_drop_one_permission_and_add_bind_escalate_where_roles_are_made() -> None:
    perms = [
        Permission("namespace", "", "pods", "", "create"),
        Permission("namespace", "", "pods", "", "list"),
        Permission("namespace", "rbac.authorization.k8s.io", "roles", "", "create"),
        Permission("cluster", "", "nodes", "", "list"),
        Permission("skypilot-system", "rbac.authorization.k8s.io", "rolebindings", "", "create"),
    ]

    rules = grants_for(perms, without=Permission("namespace", "", "pods", "", "create"))

    assert {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]} in rules["namespace"]
    assert {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles"],
        "verbs": ["bind", "create", "escalate"],
    } in rules["namespace"]
    assert rules["cluster"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]
    wide = grants_for(perms, system_cluster_wide=True, bind_escalate=())
    assert "skypilot-system" not in wide
    assert {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["rolebindings"],
        "verbs": ["create"],
    } in wide["cluster"]


def test_scrub_replaces_what_changes_between_runs(tmp_path: Path) -> None:
    who = Identity(
        "id-n0-1a2b3c",
        "system:serviceaccount:lab-identities:id-n0-1a2b3c",
        tmp_path / "k",
        "sky-9f8e7d",
    )
    text = (
        'pods is forbidden: User "system:serviceaccount:lab-identities:id-n0-1a2b3c" cannot '
        'list resource "pods" in the namespace "sky-9f8e7d" (https://127.0.0.1:41234, '
        f"{tmp_path}/home)"
    )

    scrubbed = _scrub(text, who, tmp_path, "https://127.0.0.1:41234")

    assert scrubbed == (
        'pods is forbidden: User "$IDENTITY" cannot list resource "pods" in the namespace '
        '"$NAMESPACE" ($APISERVER, $RUN_DIR/home)'
    )


def test_exec_grants_pair_get_with_create() -> None:
    # Audited as get/101, but the apiserver also authorizes the WebSocket upgrade as create.
    rules = grants_for([Permission("namespace", "", "pods", "exec", "get")])

    assert rules["namespace"] == [
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]}
    ]


def _at(event: dict[str, Any], received: str) -> dict[str, Any]:
    return {**event, "requestReceivedTimestamp": f"2026-12-01T01:00:{received}Z"}


def test_requests_are_in_the_order_the_apiserver_received_them() -> None:
    # A failing SPDY exec is logged when it ends, after the teardown's requests.
    exec_post = _at(_event("e", "create", 500, resource="pods", subresource="exec"), "01.0")
    teardown = _at(_event("d", "list", 403, resource="deployments", apiGroup="apps"), "05.0")

    requests = _requests([teardown, exec_post], NS)

    assert [r.subresource for r in requests] == ["exec", ""]


def _run(outcome: Outcome, *requests: Request) -> Run:
    return Run("launch", "v", 1, outcome, "", "", 1.0, tuple(requests))


def _req(verb: str, resource: str, code: int, subresource: str = "") -> Request:
    return Request(verb, "", resource, subresource, NS, None, code, "namespace")


def test_verdicts_around_the_first_exec() -> None:
    baseline = _run(
        Outcome.STOPPED_AT_EXEC, _req("create", "pods", 201), _req("get", "pods", 101, "exec")
    )
    events = Permission("namespace", "", "events", "", "list")
    deployments = Permission("namespace", "apps", "deployments", "", "list")
    exec_get = Permission("namespace", "", "pods", "exec", "get")

    before = _run(Outcome.FORBIDDEN, _req("list", "events", 403), _req("get", "pods", 101, "exec"))
    assert _verdict(events, before, baseline)["effect"] == "tolerated"

    after = _run(
        Outcome.FORBIDDEN,
        _req("get", "pods", 101, "exec"),
        Request("list", "apps", "deployments", "", NS, None, 403, "namespace"),
    )
    assert _verdict(deployments, after, baseline)["effect"] == "after-stopping-point"

    refused_exec = _run(Outcome.FORBIDDEN, _req("get", "pods", 403, "exec"))
    assert _verdict(exec_get, refused_exec, baseline)["effect"] == "fatal"

    stopped = _run(Outcome.FORBIDDEN, _req("list", "events", 403))
    assert _verdict(events, stopped, baseline)["effect"] == "fatal"


def test_past_the_first_exec_a_403_that_stops_the_operation_is_fatal() -> None:
    # Lifecycle scenarios launch to the first exec, then drive SkyPilot's own post-exec
    # code: their baseline completes, so a 403 after that exec is judged like any other.
    baseline = _run(Outcome.COMPLETED, _req("get", "pods", 101, "exec"), _req("patch", "pods", 200))
    patch = Permission("namespace", "", "pods", "", "patch")
    refused = _run(Outcome.FORBIDDEN, _req("get", "pods", 101, "exec"), _req("patch", "pods", 403))
    assert _verdict(patch, refused, baseline)["effect"] == "fatal"
    swallowed = _run(
        Outcome.COMPLETED, _req("get", "pods", 101, "exec"), _req("patch", "pods", 403)
    )
    assert _verdict(patch, swallowed, baseline)["effect"] == "tolerated"


def test_a_launch_step_is_done_once_its_first_exec_was_made() -> None:
    upgraded = _event("x", "get", 101, resource="pods", subresource="exec")
    refused = _event("y", "get", 403, resource="pods", subresource="exec")
    created = _event("z", "create", 201, resource="pods")
    assert _made_first_exec([created, upgraded])
    assert not _made_first_exec([created, refused])
    assert not _made_first_exec([created])


def test_a_rule_asked_by_several_names_is_withdrawn_one_name_at_a_time() -> None:
    # The nightly gets namespace kube-system (its error swallowed) and skypilot-system.
    ns = [
        Permission("cluster", "", "namespaces", "", "get", "kube-system"),
        Permission("cluster", "", "namespaces", "", "get", "skypilot-system"),
        Permission("cluster", "", "nodes", "", "list"),
        Permission("namespace", "", "pods", "", "get", "one-pod"),
        Permission("namespace", "", "pods", "", "get"),
    ]
    names = by_name(ns)
    # pods are also got without a name (a list-like get): not judged per name
    assert names == {
        Permission("cluster", "", "namespaces", "", "get"): {"kube-system", "skypilot-system"}
    }
    keys = sorted({Permission(p.scope, p.group, p.resource, p.subresource, p.verb) for p in ns})

    rules = grants_for(keys, without=ns[0], names=names)

    assert rules["cluster"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
        {
            "apiGroups": [""],
            "resources": ["namespaces"],
            "verbs": ["get"],
            "resourceNames": ["skypilot-system"],
        },
    ]
    # Withdrawing the rule itself (no name) still withdraws every name.
    whole = grants_for(
        keys, without=Permission("cluster", "", "namespaces", "", "get"), names=names
    )
    assert whole["cluster"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]


def test_a_verdict_per_name_counts_only_that_names_403() -> None:
    def get_ns(name: str, code: int) -> Request:
        return Request("get", "", "namespaces", "", "", name, code, "cluster")

    exec_ok = _req("get", "pods", 101, "exec")
    baseline = _run(Outcome.STOPPED_AT_EXEC, get_ns("kube-system", 200), exec_ok)
    kube_system = Permission("cluster", "", "namespaces", "", "get", "kube-system")
    system = Permission("cluster", "", "namespaces", "", "get", "skypilot-system")

    # kube-system refused, and the launch still reached its exec
    swallowed = _run(Outcome.STOPPED_AT_EXEC, get_ns("kube-system", 403), exec_ok)
    assert _verdict(kube_system, swallowed, baseline)["effect"] == "tolerated"
    # that run says nothing of skypilot-system: that name was not refused
    assert _verdict(system, swallowed, baseline)["effect"] == "not-requested"

    stopped = _run(Outcome.FORBIDDEN, get_ns("kube-system", 200), get_ns("skypilot-system", 403))
    assert _verdict(system, stopped, baseline)["effect"] == "fatal"
    assert _verdict(kube_system, stopped, baseline)["effect"] == "not-requested"


def test_the_closed_loop_reads_verdicts_per_name() -> None:
    # In the nightly's launch a 403 on namespace kube-system is swallowed (get_cluster_uid)
    # and one on skypilot-system stops it: the inventory judged them apart.
    from tests.skypilot import closed_loop as cl

    nightly = next(v for v in cl.venvs.VERSIONS if v.startswith("nightly"))
    refused = [
        Request("get", "", "namespaces", "", "", name, 403, "cluster")
        for name in ("kube-system", "skypilot-system")
    ]
    run = _run(Outcome.STOPPED_AT_EXEC, *refused)

    assert cl.unexpected_403s(nightly, cl.CASES["launch"], run) == [
        "get /namespaces/ @cluster skypilot-system"
    ]


def test_fixed_port_runs_take_turns(tmp_path, monkeypatch) -> None:
    """A release with a fixed API server port holds a machine-wide lock for its run."""
    import fcntl

    from tests.skypilot import runner

    monkeypatch.setenv("SKYCHECK_CACHE", str(tmp_path))
    monkeypatch.setattr(runner.fixed_port, "wait_bindable", lambda port, wait: None)
    lock = tmp_path / "skypilot-api-port-46580.lock"
    with runner.fixed_port_lock("0.12.3.post1"), lock.open("a") as other:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = False
        except BlockingIOError:
            held = True
    assert held
    # A private port: no lock taken.
    with runner.fixed_port_lock("0.14.1"), lock.open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_an_outgoing_connection_on_the_fixed_port_blocks_skypilots_check() -> None:
    """What broke 0.12's `sky api start`: a connection whose ephemeral local port is the
    fixed one makes SkyPilot's bind check fail; holders() names it for the error."""
    import socket

    from tests.skypilot import fixed_port

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            local = client.getsockname()[1]
            assert not fixed_port.bindable(local)
            assert any(
                h.startswith(f"ESTABLISHED :{local}->") and f"pid={os.getpid()}" in h
                for h in fixed_port.holders(local)
            )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert fixed_port.bindable(free)


def test_reserved_port_ranges_are_read_as_the_kernel_writes_them() -> None:
    from tests.skypilot import fixed_port

    assert fixed_port._in_ranges(46580, "8080,46000-47000")
    assert fixed_port._in_ranges(46580, "46580")
    assert not fixed_port._in_ranges(46580, "")
    assert not fixed_port._in_ranges(46580, "46581-46590,80")

"""A lab on the test control plane: two namespaces, the oracle, and running one world in it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import yaml

from skycheck import rbac
from tests.differential._oracle import RBAC_API, Oracle, Query
from tests.differential._worlds import break_cycles, concrete


def key_of(obj: dict[str, Any]) -> tuple[str, str, str]:
    """(kind, namespace, name), as :func:`skycheck.rbac.object_key` for a manifest dict."""
    meta = obj["metadata"]
    namespace = meta.get("namespace", "") if obj["kind"] in rbac.NAMESPACED_KINDS else ""
    return (obj["kind"], namespace, meta["name"])


@dataclass(frozen=True)
class Outcome:
    """A world run on both sides: the objects as applied, the reviews, both answers."""

    objects: list[dict[str, Any]]
    state: rbac.RbacState
    asked: list[Query]
    live: list[dict[str, Any]]  # SubjectAccessReview statuses
    offline: list[rbac.AuthzResult]

    def disagreements(self) -> list[str]:
        return [
            f"{q.describe()}\n      apiserver: allowed={bool(r.get('allowed'))} "
            f"{r.get('reason', '')!r}\n      offline:   allowed={o.allowed} {o.reason!r}"
            for q, r, o in zip(self.asked, self.live, self.offline, strict=True)
            if bool(r.get("allowed")) != o.allowed
        ]

    def world_yaml(self) -> str:
        return yaml.safe_dump_all(self.objects, sort_keys=False)


PROBE_LABEL = "diff.skycheck.test/probe"


@dataclass
class Lab:
    """Namespaces ``{a}``, ``{b}`` and a probe pair of ClusterRoles, for one test module.

    Deleting an aggregated ClusterRole has a quirk: kube-controller-manager's aggregation
    controller may still hold it in its cache, recompute its rules (a source was deleted in the
    same breath) and write them with server-side apply, which re-creates the object without
    its aggregationRule: a ghost holding the last aggregated rules. So :meth:`remove` first
    turns a world's aggregated ClusterRoles into plain ones and waits at :meth:`barrier`
    until the controller has seen that, and only then deletes. The barrier is a probe pair: an
    aggregated ClusterRole ``{m}-probe`` selecting ``{m}-probe-source``, whose rules
    :meth:`barrier` changes and then waits to see aggregated (the controller's informer
    delivers events in order, so it has seen every earlier write).
    """

    oracle: Oracle
    names: dict[str, str]  # placeholder -> concrete: m (module token), a, b, c (namespaces)
    bootstrap_keys: frozenset[tuple[str, str, str]]
    barriers: int = 0
    # Namespaces besides {a} and {b} whose Roles and RoleBindings a world's checks can reach.
    watched: tuple[str, ...] = ()

    def _probe(self, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
        m = self.names["m"]
        rule = {"apiGroups": ["probe.skycheck.test"], "resources": [f"probe{n}"], "verbs": ["get"]}
        source = {
            "apiVersion": rbac.RBAC_API_VERSION,
            "kind": "ClusterRole",
            "metadata": {"name": f"{m}-probe-source", "labels": {PROBE_LABEL: m}},
            "rules": [rule],
        }
        selector = {"matchLabels": {PROBE_LABEL: m}}
        aggregated = {
            "apiVersion": rbac.RBAC_API_VERSION,
            "kind": "ClusterRole",
            "metadata": {"name": f"{m}-probe"},
            "aggregationRule": {"clusterRoleSelectors": [selector]},
        }
        return source, aggregated

    def open(self) -> None:
        source, aggregated = self._probe(0)
        self.oracle.create([source, aggregated])
        self.barrier()

    def close(self) -> None:
        """Delete the probes (the aggregated one first: settled, it cannot come back), then
        sweep whatever the module left cluster-wide, ghosts included."""
        source, aggregated = self._probe(0)
        self.oracle.delete([aggregated])
        time.sleep(0.5)
        self.oracle.delete([source])
        time.sleep(0.5)
        self.sweep(self.names["m"])

    def barrier(self, timeout: float = 30.0) -> None:
        """Return once the aggregation controller has seen every write made before the call."""
        self.barriers += 1
        source, aggregated = self._probe(self.barriers)
        name = source["metadata"]["name"]
        self.oracle.call("PUT", f"{RBAC_API}/clusterroles/{name}", source)
        want = frozenset(rbac.parse_object(source).rules)  # type: ignore[union-attr]
        self.oracle.settle_aggregation({aggregated["metadata"]["name"]: want}, timeout=timeout)

    def remove(self, objects: list[dict[str, Any]], sentinels: list[dict[str, Any]]) -> None:
        """Delete a world without leaving ghosts: first make its aggregated ClusterRoles plain
        ones and wait until the controller has seen that (from then on it leaves them alone),
        then delete everything."""
        aggregated = [o for o in objects if o.get("aggregationRule") is not None]
        if aggregated:
            plain = [{k: v for k, v in o.items() if k != "aggregationRule"} for o in aggregated]
            self.oracle.map(
                lambda o: self.oracle.call(
                    "PUT", f"{RBAC_API}/clusterroles/{o['metadata']['name']}", o, ok=(200, 404)
                ),
                plain,
            )
            self.barrier()
        self.oracle.delete([*objects, *sentinels])

    def sweep(self, prefix: str) -> None:
        """Delete ClusterRoles and ClusterRoleBindings named ``prefix...`` (ghosts, leftovers)."""
        probes = {o["metadata"]["name"] for o in self._probe(0)}
        found = [
            o
            for o in self.oracle.live_objects([])
            if o["metadata"]["name"].startswith(prefix) and o["metadata"]["name"] not in probes
        ]
        self.oracle.delete(found)

    def foreign(self) -> list[dict[str, Any]]:
        """Live objects the evaluator must know besides the world: all but the bootstrap ones
        (other tests' leftovers). Roles and RoleBindings only in the lab's namespaces: those of
        other namespaces cannot change a review in these namespaces or cluster-wide. Ghosts of
        earlier worlds (see the class docstring) are deleted first, should any be left."""
        live = self.oracle.live_objects([self.names["a"], self.names["b"], *self.watched])
        probes = {o["metadata"]["name"] for o in self._probe(0)}
        ghosts = [
            o
            for o in live
            if o["kind"] in ("ClusterRole", "ClusterRoleBinding")
            and o["metadata"]["name"].startswith(self.names["m"] + "-")
            and o["metadata"]["name"] not in probes
        ]
        if ghosts:
            self.oracle.delete(ghosts)
            live = [o for o in live if o not in ghosts]
        return [o for o in live if key_of(o) not in self.bootstrap_keys]

    def settle_bootstrap(self) -> None:
        state = Oracle.offline_state([], self.foreign())
        self.oracle.settle_aggregation(Oracle.aggregation_expectations(state, []))

    @contextmanager
    def applied(
        self, world: list[dict[str, Any]], prefix: str
    ) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]], rbac.RbacState]]:
        """Apply ``world`` (placeholders filled, ``{p}`` = ``prefix``), wait for aggregation and
        the authorizer's caches, yield (the objects as applied, the cluster's other objects,
        the offline evaluator of both), then delete the world again."""
        names = {**self.names, "p": prefix}
        objects: list[dict[str, Any]] = concrete(world, names)
        foreign = self.foreign()
        state = Oracle.offline_state(objects, foreign)
        if any("aggregate each other" in w for w in state.warnings):
            # A cycle keeps every rule that ever reaches it: make sure the controller has seen
            # the previous world's deletions before this one can pick up their rules (and
            # look at the cluster again: the barrier changed the probe's rules).
            self.barrier()
            objects = break_cycles(objects)
            foreign = self.foreign()
            state = Oracle.offline_state(objects, foreign)
        expected_rules = Oracle.aggregation_expectations(state, objects)
        sentinels = self.oracle.sentinels(prefix, names["a"])
        try:
            self.oracle.create(objects)
            try:
                self.oracle.settle_aggregation(expected_rules, timeout=10)
            except AssertionError as exc:
                text = yaml.safe_dump_all(objects, sort_keys=False)
                raise AssertionError(f"{exc}\n--- world:\n{text}") from None
            self.oracle.sync(sentinels)
            yield objects, foreign, state
        finally:
            self.remove(objects, sentinels)

    def run(self, world: list[dict[str, Any]], queries: list[Query], prefix: str) -> Outcome:
        """Apply ``world``, ask ``queries`` both ways, delete the world again."""
        names = {**self.names, "p": prefix}
        asked = list(dict.fromkeys(concrete(q, names) for q in queries))
        with self.applied(world, prefix) as (objects, _, state):
            live = self.oracle.reviews(asked)
        offline = [q.offline(state) for q in asked]
        return Outcome(objects, state, asked, live, offline)

"""ClusterRole aggregation, as kube-controller-manager computes it.

``pkg/controller/clusterroleaggregation/clusterroleaggregation_controller.go``: computed once,
as the fixpoint the controller reaches on a fresh cluster.
"""

from __future__ import annotations

from collections.abc import Mapping

from skycheck.rbac.model import ClusterRole, PolicyRule


def aggregate(
    cluster_roles: Mapping[str, ClusterRole],
) -> tuple[dict[str, tuple[PolicyRule, ...]], tuple[str, ...]]:
    """The rules each ClusterRole has once kube-controller-manager has aggregated.

    clusterroleaggregation_controller.go, syncClusterRole: for a ClusterRole with an
    aggregationRule, rules = for each selector in order, for each matching ClusterRole
    sorted by name, except itself, each rule not already present (deep equality). The
    hand-written rules are replaced, unless that union is empty: the controller writes
    with server-side apply (``WithRules(newPolicyRules...)``, force), and an apply
    configuration without rules leaves the ``rules`` field to whoever wrote it, so a
    role whose selectors match nothing keeps the rules it was created with (found by
    tests/differential; regression test in tests/differential/test_regressions.py).
    The controller re-syncs on every change, so chains (view -> edit -> admin) converge;
    here we compute that fixpoint directly, from the rules as written and syncing in
    name order: the result is unique unless roles aggregate each other, and then it is
    what that order gives on a fresh cluster. A role with a selector the controller
    cannot parse keeps its own rules.
    """
    rules: dict[str, tuple[PolicyRule, ...]] = {
        name: cr.rules for name, cr in cluster_roles.items()
    }
    label_maps = {name: dict(cr.labels) for name, cr in cluster_roles.items()}
    names = sorted(cluster_roles)
    aggregated: list[str] = []
    sources: dict[str, list[list[str]]] = {}
    for name in names:
        agg = cluster_roles[name].aggregation
        if agg is None or not all(sel.valid for sel in agg):
            continue
        aggregated.append(name)
        sources[name] = [
            [m for m in names if m != name and sel.matches(label_maps[m])] for sel in agg
        ]
    # Without cycles the sets settle within a pass per level of the chains; once they are
    # stable a few more passes settle the order of the lists (cosmetic: order never
    # changes a decision). Cycles (warned about) may not settle: the passes are bounded.
    own = {name: cluster_roles[name].rules for name in aggregated}
    current_sets = {name: frozenset(own[name]) for name in aggregated}
    settle = len(aggregated) + 1
    for _ in range(4 * len(aggregated) + 8):
        sets_changed = lists_changed = False
        for name in aggregated:
            merged: dict[PolicyRule, None] = {}
            for matched in sources[name]:
                for m in matched:
                    for rule in rules[m]:
                        merged.setdefault(rule, None)
            new_rules = tuple(merged) or own[name]  # nothing aggregated: rules untouched
            lists_changed |= new_rules != rules[name]
            rules[name] = new_rules
            new_set = frozenset(new_rules)
            if new_set != current_sets[name]:
                current_sets[name] = new_set
                sets_changed = True
        if sets_changed:
            continue
        settle -= 1
        if not lists_changed or settle <= 0:
            break
    return rules, _cycle_warnings(aggregated, sources)


def _cycle_warnings(aggregated: list[str], sources: dict[str, list[list[str]]]) -> tuple[str, ...]:
    agg_set = set(aggregated)
    graph = {
        n: sorted({m for matched in sources[n] for m in matched if m in agg_set})
        for n in aggregated
    }
    # Tarjan's strongly connected components, iteratively.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for root in aggregated:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for j in range(i, len(graph[node])):
                nxt = graph[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return tuple(
        f"ClusterRoles {', '.join(c)} aggregate each other: on a cluster the result depends "
        "on the order kube-controller-manager syncs them; skycheck assumes one such order "
        "(by name)"
        for c in sorted(cycles)
    )

"""Differential test: the excess audit's permissions against the real kube-apiserver.

Hypothesis generates random RBAC worlds (``_worlds.py``: wildcards, subresources,
resourceNames, aggregation, RoleBindings to ClusterRoles, system groups, dangling roleRefs)
and access reviews aimed at them; each world is applied to the test control plane
(``_lab.py``). For every identity the reviews name, the audit of that identity with an empty
need (everything it holds, the default grants counted) must be:

- sound: every single permission it lists (not a wildcard item, not a non-resource URL),
  asked as a SubjectAccessReview, is allowed;
- complete: every review the apiserver allows that identity is reached by an item (a
  single permission, or the wildcard item that stands for what a wildcard matches beyond
  the resources and verbs skycheck knows).

CI runs a fixed set of worlds (``derandomize``); ``SKYCHECK_DIFF_SCALE=10`` for ten times
more, ``SKYCHECK_DIFF_RANDOM=1`` for new ones each run. Figures with ``pytest -s``.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from skycheck import excess, rbac
from skycheck.excess_types import ExcessItem
from skycheck.models import Method, Report, Subject
from tests.differential._lab import Lab
from tests.differential._oracle import Query
from tests.differential._worlds import concrete, queries, worlds

pytestmark = pytest.mark.cluster

SCALE = max(1, int(os.environ.get("SKYCHECK_DIFF_SCALE", "1")))
DERANDOMIZE = not os.environ.get("SKYCHECK_DIFF_RANDOM")
WORLDS = 15 * SCALE
REVIEWS_PER_WORLD = 40
ITEMS_PER_IDENTITY = 120  # soundness reviews per identity and world (spread over the list)


def _bare_report(user: str, groups: tuple[str, ...]) -> Report:
    """A report that needs nothing: its audit lists everything the identity holds."""
    subject = Subject("User", user, None, user, groups)
    return Report(
        mode="offline",
        method=Method.OFFLINE,
        context=None,
        namespace="default",
        subject=subject,
        findings=(),
        features=(),
        required_features=(),
    )


def _reaches(item: ExcessItem, q: Query) -> bool:
    if q.path:
        url = item.non_resource_url
        if not url or item.verb not in ("*", q.verb):
            return False
        return (
            url == "*"
            or url == q.path
            or (url.endswith("*") and q.path.startswith(url.rstrip("*")))
        )
    if item.non_resource_url or item.verb not in ("*", q.verb):
        return False
    if item.namespace not in ("", q.namespace) or item.name not in ("", q.name):
        return False
    if item.wildcard:
        if item.group not in ("*", q.group):
            return False
        if item.resource == "*":
            return not item.subresource or item.subresource == q.subresource
        return item.resource == q.resource and item.subresource == q.subresource
    return (item.group, item.resource, item.subresource) == (q.group, q.resource, q.subresource)


def _as_query(item: ExcessItem, user: str, groups: tuple[str, ...]) -> Query:
    return Query(
        user,
        groups,
        item.verb,
        item.namespace,
        item.group,
        item.resource,
        item.subresource,
        item.name,
    )


def test_excess_permissions_agree_with_the_apiserver(lab: Lab) -> None:
    counter = itertools.count()
    figures = {"worlds": 0, "identities": 0, "sound": 0, "complete": 0, "allowed": 0}
    started = time.monotonic()

    @settings(
        max_examples=WORLDS,
        derandomize=DERANDOMIZE,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(world=worlds(), data=st.data())
    def check(world: list[dict[str, Any]], data: st.DataObject) -> None:
        reviews = data.draw(queries(world, REVIEWS_PER_WORLD), label="reviews")
        prefix = f"{lab.names['m']}-x{next(counter)}-"
        names = {**lab.names, "p": prefix}
        asked = list(dict.fromkeys(concrete(q, names) for q in reviews))
        with lab.applied(world, prefix) as (_, _, state):
            who = sorted({(q.user, q.groups) for q in asked})
            audits = {
                w: excess.audit(state, _bare_report(*w), source="", count_baseline=True).items
                for w in who
            }
            sound: list[Query] = []
            for (user, groups), items in audits.items():
                single = [i for i in items if not i.wildcard and not i.non_resource_url]
                step = max(1, len(single) // ITEMS_PER_IDENTITY)
                sound += [_as_query(i, user, groups) for i in single[::step]]
            sound_answers = lab.oracle.reviews(sound)
            live = lab.oracle.reviews(asked)
        figures["worlds"] += 1
        figures["identities"] += len(who)
        figures["sound"] += len(sound)
        refused = [
            q.describe() for q, r in zip(sound, sound_answers, strict=True) if not r.get("allowed")
        ]
        missed = []
        for q, r in zip(asked, live, strict=True):
            if not r.get("allowed"):
                continue
            figures["allowed"] += 1
            masters = rbac.SYSTEM_MASTERS in q.groups
            if not masters and not any(_reaches(i, q) for i in audits[(q.user, q.groups)]):
                missed.append(q.describe())
        figures["complete"] += len(asked)
        if refused or missed:
            raise AssertionError(
                f"{len(refused)} listed but refused, {len(missed)} allowed but not listed\n"
                + "\n".join(["refused:", *refused, "missed:", *missed])
            )

    try:
        check()
    finally:
        seconds = time.monotonic() - started
        print(f"\ndifferential (excess vs kube-apiserver): {figures}, {seconds:.0f} s")
    assert figures["allowed"] >= figures["complete"] // 10, "too few allowed reviews"

"""The request oracle: skycheck, live and offline, against the real request of every check.

SubjectAccessReview and ``kubectl auth can-i`` answer for the attributes they are sent; what
SkyPilot meets is the answer to its real HTTP request, whose attributes the apiserver derives
from the URL (a namespace read by name is authorized in that namespace: see
skycheck/requestinfo.py). So here the oracle is the request itself. Hypothesis generates RBAC
worlds aimed at the catalogue's resources (the differential generator's structure, with rules
drawn from the catalogue, Roles and RoleBindings in the checked namespace, another one and
skypilot-system, wildcards, resourceNames naming namespaces), applies each to the test control
plane, and for two identities (a ServiceAccount with its own TokenRequest token, and a user
with a group, impersonated by the admin) compares, check by check of the whole catalogue:

- the real request (``tests/_real_request.py``: reads as GET, writes with ``dryRun=All``, a
  made-up object for subresources; denied = the authorization filter's 403),
- ``skycheck`` live (SubjectAccessReview, as a user runs it) and
- ``skycheck --manifests`` over the same objects.

``bind`` and ``escalate`` have no request of their own (the RBAC storage checks them inside the
create of a role or binding): tests/integration/test_escalation_alternatives.py covers them.
CI runs a fixed set of examples; ``SKYCHECK_ORACLE_SCALE=N`` for N times more,
``SKYCHECK_DIFF_RANDOM=1`` for new examples. The figures are printed at the end (``pytest -s``).
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from skycheck import catalogue, rbac
from skycheck.cli import run
from tests._real_request import Answer, Requester, http_request
from tests.cluster.controlplane import ControlPlane
from tests.differential._lab import Lab
from tests.differential._oracle import Oracle
from tests.differential._worlds import ROLE_NAMES, _head, _unique, bindings, cluster_roles

pytestmark = pytest.mark.cluster

SCALE = max(1, int(os.environ.get("SKYCHECK_ORACLE_SCALE", "1")))
DERANDOMIZE = not os.environ.get("SKYCHECK_DIFF_RANDOM")
WORLDS = 16 * SCALE
FULL = ("--all-features", "--remote-identity", "SERVICE_ACCOUNT")
VERSIONS = ("0.14.1", "1.0.0.dev20261027")  # every proven SkyPilot version's checks
SYSTEM = "skypilot-system"
ROLE_NAMESPACES = ("{a}", "{b}", "{s}")


def _catalogue_resources() -> tuple[tuple[str, str], ...]:
    """(apiGroup, resource[/subresource]) of every catalogue rule, plus the namespaces."""
    found = {
        (r.group, r.resource + (f"/{r.subresource}" if r.subresource else ""))
        for r in catalogue.load_catalogue().rules
    }
    return tuple(sorted(found | {("", "namespaces")}))


RESOURCES = _catalogue_resources()
WILDCARDS = (("*", "*"), ("", "*"), ("", "pods/*"), ("", "*/status"), ("apps", "*"))
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
# resourceNames: namespaces read by name, SkyPilot's own object names, and "".
NAMES = (SYSTEM, "{a}", "{b}", "skypilot-service-account-role", "")


@st.composite
def catalogue_rules(draw: st.DrawFn) -> dict[str, Any]:
    picked = draw(_unique(st.one_of(st.sampled_from(RESOURCES), st.sampled_from(WILDCARDS)), 1, 3))
    if draw(st.integers(0, 2)) == 0:  # namespaces often: the rule this oracle is about
        picked = [("", "namespaces"), *picked]
    rule: dict[str, Any] = {
        "apiGroups": sorted({g for g, _ in picked}),
        "resources": sorted({r for _, r in picked}),
        "verbs": draw(_unique(st.sampled_from((*VERBS, "*")), 1, 4)),
    }
    if draw(st.integers(0, 3)) == 0:
        rule["resourceNames"] = draw(_unique(st.sampled_from(NAMES), 1, 2))
    return rule


@st.composite
def request_worlds(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Roles in the checked namespace {a}, another {b} and skypilot-system {s}; bindings in
    each (to Roles and ClusterRoles, the bootstrap ones included) and cluster-wide."""
    world: list[dict[str, Any]] = []
    for name in draw(_unique(st.sampled_from(ROLE_NAMES), 1, 3)):
        world.append(draw(cluster_roles(name, catalogue_rules())))
    for ns in ROLE_NAMESPACES:
        for name in draw(_unique(st.sampled_from(ROLE_NAMES), 0, 2)):
            obj = _head("Role", name, ns)
            obj["rules"] = draw(st.lists(catalogue_rules(), min_size=1, max_size=3))
            world.append(obj)
        for i in range(draw(st.integers(0, 2))):
            world.append(draw(bindings(f"{{p}}rb{i}", ns)))
    for i in range(draw(st.integers(0, 2))):
        world.append(draw(bindings(f"{{p}}crb{i}", None)))
    return world


@dataclass
class Tally:
    worlds: int = 0
    objects: int = 0
    requests: int = 0
    allowed: int = 0
    by_name: int = 0  # namespace-by-name requests the apiserver authorized in that namespace
    skipped: int = 0  # checks with no request of their own (bind, escalate), or unknown
    disagreements: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"{self.worlds} worlds, {self.objects} RBAC objects, {self.requests} real requests "
            f"({self.allowed} allowed, {self.requests - self.allowed} denied; "
            f"{self.by_name} namespace-by-name), each judged by skycheck live and offline: "
            f"{len(self.disagreements)} disagreements; {self.skipped} checks without a "
            f"request of their own; {self.seconds:.1f} s"
        )


@pytest.fixture(scope="module")
def request_lab(cluster: ControlPlane) -> Iterator[Lab]:
    token = f"rq{secrets.token_hex(3)}"
    names = {"m": token, "a": f"{token}-a", "b": f"{token}-b", "c": f"{token}-c", "s": SYSTEM}
    for ns in (names["a"], names["b"]):
        cluster.create_namespace(ns, labels={"skycheck-test": "true"}, exist_ok=False)
    for ns in (SYSTEM, "ingress-nginx"):
        cluster.create_namespace(ns, exist_ok=True)
    cluster.create_service_account(names["a"], "sa1")
    bootstrap = frozenset(rbac.object_key(o) for o in rbac.bootstrap_policy().objects)
    oracle = Oracle(cluster)
    lab = Lab(oracle, names, bootstrap, watched=(SYSTEM, "ingress-nginx"))
    try:
        lab.open()
        yield lab
    finally:
        lab.close()
        for ns in (names["a"], names["b"]):
            cluster.delete_namespace(ns)
        lab.settle_bootstrap()
        oracle.close()


def _report(args: Sequence[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    run([*args, "-o", "json"])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def _asked(check: dict[str, Any]) -> bool:
    """Checks decided by an access review whose request the oracle can make."""
    if check["id"].endswith(".exists"):  # a namespace's existence, looked up, not reviewed
        return False
    return (
        http_request(
            check["verb"],
            check["group"],
            check["resource"],
            check["subresource"],
            check["namespace"],
            check["name"],
        )
        is not None
    )


def _real(
    pool: ThreadPoolExecutor,
    requester: Requester,
    checks: list[dict[str, Any]],
    impersonate: tuple[str, tuple[str, ...]] | None,
) -> list[Answer]:
    def one(check: dict[str, Any]) -> Answer:
        request = http_request(
            check["verb"],
            check["group"],
            check["resource"],
            check["subresource"],
            check["namespace"],
            check["name"],
        )
        assert request is not None
        if impersonate is None:
            return requester.send(request)
        return requester.send(
            request, impersonate_user=impersonate[0], impersonate_groups=impersonate[1]
        )

    return list(pool.map(one, checks))


def test_skycheck_agrees_with_the_real_request_of_every_check(
    cluster: ControlPlane,
    request_lab: Lab,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lab = request_lab
    a, m = lab.names["a"], lab.names["m"]
    sa_requester = Requester(cluster.server, str(cluster.ca_cert), cluster.token(a, "sa1"))
    admin_requester = Requester(cluster.server, str(cluster.ca_cert), cluster.admin_token)
    # (skycheck's identity flags, the requester, impersonation or None)
    identities = [
        (["--sa", "sa1", "-n", a], sa_requester, None),
        (
            ["--as", f"{m}-u1", "--as-group", f"{m}-g1", "-n", a],
            admin_requester,
            (f"{m}-u1", (f"{m}-g1",)),
        ),
    ]
    tally = Tally()
    counter = itertools.count()
    started = time.monotonic()
    pool = ThreadPoolExecutor(8, thread_name_prefix="requests")

    def check_world(world: list[dict[str, Any]], n: int) -> None:
        version = VERSIONS[n % len(VERSIONS)]
        prefix = f"{m}-{n}-"
        with lab.applied(world, prefix) as (objects, foreign, _):
            directory = tmp_path / f"world{n}"
            directory.mkdir()
            (directory / "world.yaml").write_text(yaml.safe_dump_all(objects))
            (directory / "zz-cluster.yaml").write_text(yaml.safe_dump_all(foreign))
            for flags, requester, impersonate in identities:
                common = [*flags, *FULL, "--skypilot-version", version]
                live = _report(["--kubeconfig", str(cluster.admin_kubeconfig), *common], capsys)
                offline = _report(["--manifests", str(directory), *common], capsys)
                assert [c["id"] for c in live["checks"]] == [c["id"] for c in offline["checks"]]
                checks = [c for c in live["checks"] if _asked(c)]
                tally.skipped += len(live["checks"]) - len(checks)
                real = _real(pool, requester, checks, impersonate)
                by_id = {c["id"]: c for c in offline["checks"]}
                for check, answer in zip(checks, real, strict=True):
                    truth = "denied" if answer.denied else "allowed"
                    tally.requests += 1
                    tally.allowed += truth == "allowed"
                    tally.by_name += check["resource"] == "namespaces" and bool(check["name"])
                    sides = {"live": check["decision"], "offline": by_id[check["id"]]["decision"]}
                    for side, decision in sides.items():
                        if decision != truth:
                            tally.disagreements.append(
                                f"{' '.join(flags)} {check['id']} ({check['verb']} "
                                f"{check['resource']} {check['name']!r} in "
                                f"{check['namespace']!r}): real {answer.status} {truth} "
                                f"{answer.message[:160]!r}; {side} says {decision}"
                            )
        tally.worlds += 1
        tally.objects += len(objects)
        if tally.disagreements:
            raise AssertionError(
                f"{len(tally.disagreements)} disagreements\n--- world:\n"
                + yaml.safe_dump_all(objects, sort_keys=False)
                + "\n--- checks:\n  "
                + "\n  ".join(tally.disagreements[:40])
            )

    @settings(
        max_examples=WORLDS,
        derandomize=DERANDOMIZE,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(world=request_worlds())
    def check(world: list[dict[str, Any]]) -> None:
        check_world(world, next(counter))

    try:
        check()
    finally:
        pool.shutdown()
        tally.seconds = time.monotonic() - started
        print(f"\nrequest oracle (skycheck vs the real request): {tally.line()}")
    assert tally.requests >= 150 * WORLDS, tally.line()
    assert tally.allowed >= tally.requests // 20, "too few allowed requests: the test lost its aim"
    assert tally.by_name > 0

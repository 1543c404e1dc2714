"""Shared pytest fixtures: the real control plane, for tests marked ``@pytest.mark.cluster``.

The ``cluster`` fixture is session-scoped and lazy: unit tests never request it, so they never
pay for a build or a start (``pytest -m "not cluster"`` runs with no Go and no processes). A
test that requests a cluster fixture without the marker is a collection error, so ``-m`` always
selects exactly the tests that need the cluster.

Set ``SKYCHECK_TEST_KUBECONFIG_DIR`` to a directory made by ``python -m tests.cluster up`` to
reuse that running cluster instead of starting one (a 10 s saving per run while iterating).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.cluster.controlplane import ControlPlane

REUSE_ENV = "SKYCHECK_TEST_KUBECONFIG_DIR"


@pytest.fixture(autouse=True)
def _no_personal_sky_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Tests never read the developer's ~/.sky/config.yaml: HOME is an empty directory.

    (A missing file named by ``$SKYPILOT_CONFIG`` would not do: SkyPilot refuses to
    start then, and so does skycheck.) The test cache stays where it was.
    """
    cache = os.environ.get("SKYCHECK_CACHE") or str(Path.home() / ".cache" / "skycheck")
    home = tmp_path_factory.getbasetemp() / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("SKYCHECK_CACHE", cache)
    monkeypatch.setenv("HOME", str(home))
    for var in ("SKYPILOT_CONFIG", "SKYPILOT_GLOBAL_CONFIG"):
        monkeypatch.delenv(var, raising=False)


def pytest_configure(config: pytest.Config) -> None:
    """Keep SkyPilot's fixed API server port (releases before 0.13) out of the kernel's
    ephemeral ports before any control plane opens a connection (tests/skypilot/fixed_port.py)."""
    from tests.skypilot import fixed_port, venvs

    fixed_port.reserve(venvs.FIXED_API_PORT)


# Fixtures that start or use the control plane; requesting any of them requires the marker.
CLUSTER_FIXTURES = frozenset({"cluster", "ns", "sa_kubeconfig", "user_kubeconfig"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Reject cluster-fixture users that lack ``@pytest.mark.cluster``."""
    offenders = [
        item.nodeid
        for item in items
        if CLUSTER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("cluster") is None
    ]
    if offenders:
        raise pytest.UsageError(
            "tests using the control-plane fixtures must be marked @pytest.mark.cluster:\n  "
            + "\n  ".join(offenders)
        )


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A running control plane (RBAC authorizer, aggregation done, audit log on)."""
    # Imported here so collecting unit tests never imports the harness.
    from tests.cluster.controlplane import ControlPlane

    reuse = os.environ.get(REUSE_ENV)
    if reuse:
        # Someone else's cluster: use it, never stop it.
        plane = ControlPlane.attach(Path(reuse))
        if not plane.running():
            # Fail once, clearly, instead of 50 "connection refused" errors.
            raise pytest.UsageError(f"{REUSE_ENV}={reuse}: no control plane is running there")
        yield plane
        return
    plane = ControlPlane(tmp_path_factory.mktemp("cluster"), audit=True)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


def _dns_label(text: str, limit: int) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return label[:limit].rstrip("-") or "t"


@pytest.fixture
def ns(cluster: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test, deleted afterwards (without waiting)."""
    # Namespace names are DNS labels (<= 63 chars); keep a random suffix so reruns and
    # parametrised cases never collide with a namespace still terminating.
    name = f"t-{_dns_label(request.node.name, 48)}-{secrets.token_hex(3)}"
    cluster.create_namespace(name, labels={"skycheck-test": "true"}, exist_ok=False)
    yield name
    cluster.delete_namespace(name)


@pytest.fixture
def sa_kubeconfig(cluster: ControlPlane, ns: str, tmp_path: Path) -> Callable[[str], Path]:
    """Factory: ``sa_kubeconfig("sky-sa")`` creates that SA in ``ns``, returns its kubeconfig."""

    def make(name: str) -> Path:
        return cluster.kubeconfig_for_service_account(tmp_path / f"{name}.kubeconfig", ns, name)

    return make


@pytest.fixture
def user_kubeconfig(cluster: ControlPlane, tmp_path: Path) -> Callable[[str], Path]:
    """Factory: kubeconfig for a predefined token user (``alice``, ``bob``)."""

    def make(name: str) -> Path:
        return cluster.kubeconfig_for_user(tmp_path / f"{name}.kubeconfig", name)

    return make

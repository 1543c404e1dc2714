"""Fixtures for the reliability suite: hermetic environment, the fault proxy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.proxy import FaultProxy, Policy, forward_all


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's ~/.sky/config.yaml or $KUBECONFIG may change what a test sees.

    (HOME is already an empty directory: tests/conftest.py.)
    """
    monkeypatch.delenv("SKYPILOT_CONFIG", raising=False)
    monkeypatch.delenv("SKYPILOT_GLOBAL_CONFIG", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def proxy_pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The fault proxy's own CA and serving certificate (127.0.0.1)."""
    from tests.cluster import certs

    return certs.generate(tmp_path_factory.mktemp("proxy-pki"))


@pytest.fixture
def fault_proxy(cluster: Any, proxy_pki: Any) -> Iterator[Callable[..., FaultProxy]]:
    """Factory: ``fault_proxy(policy)`` starts a proxy in front of the test apiserver."""
    started: list[FaultProxy] = []

    def make(policy: Policy = forward_all, *, tls: bool = True) -> FaultProxy:
        proxy = FaultProxy(
            cluster.server,
            upstream_ca=cluster.ca_cert,
            cert=proxy_pki.serving_cert,
            key=proxy_pki.serving_key,
            policy=policy,
            tls=tls,
            lifetime=120.0,
        )
        started.append(proxy.start())
        return proxy

    yield make
    for proxy in started:
        proxy.stop()


@pytest.fixture(autouse=True)
def _forget_registered_secrets() -> Iterator[None]:
    """Kubeconfigs read in one test must not mask words in another test's output."""
    from skycheck import secrets

    known = set(secrets._KNOWN)
    yield
    secrets._KNOWN.clear()
    secrets._KNOWN.update(known)

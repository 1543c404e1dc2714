"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def system_namespaces(cluster):  # type: ignore[no-untyped-def]
    """The namespaces SkyPilot hard-codes, which the docs' manifest puts objects in."""
    for name in ("skypilot-system", "ingress-nginx"):
        cluster.create_namespace(name, exist_ok=True)

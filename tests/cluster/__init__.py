"""A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) for tests.

Release binaries cannot be downloaded where skycheck is tested, so :mod:`tests.cluster.build`
compiles them from Go modules once per version and caches them; :mod:`tests.cluster.controlplane`
runs them on loopback with the real RBAC authorizer. ``python -m tests.cluster up|down|build``
drives the same code from a shell. See docs in ../shared/reference/test-cluster.md.

Only the standard library (plus ``cryptography`` for certificates and ``pyyaml``) is used here:
the harness must not depend on the ``kubernetes`` Python client that skycheck itself wraps, so a
bug in that layer cannot hide behind the same bug in the test oracle.
"""

from __future__ import annotations

from tests.cluster.build import Binaries, ensure_binaries
from tests.cluster.controlplane import ControlPlane, ControlPlaneError, TokenUser

__all__ = ["Binaries", "ControlPlane", "ControlPlaneError", "TokenUser", "ensure_binaries"]

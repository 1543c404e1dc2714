"""skycheck: an RBAC preflight checker for SkyPilot on Kubernetes."""

__version__ = "0.1.0"

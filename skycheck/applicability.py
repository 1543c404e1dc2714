"""Which features concern the identity being checked.

SkyPilot acts as two identities: the launching identity (the kubeconfig user,
or the account a kubeconfig names) and the identity its pods run as
(``remote_identity``). Most features are the launcher's: it creates pods,
services, DaemonSets and volumes. ``rbac-bootstrap`` is the launcher's only on
SkyPilot's default identity path (``SERVICE_ACCOUNT``, ``LOCAL_CREDENTIALS``,
``NO_UPLOAD``), where every launch reconciles ``skypilot-service-account`` and
its roles; when ``remote_identity`` names a service account SkyPilot creates
nothing (sky/provision/kubernetes/config.py), and the pods' own account never
creates its roles. A feature that does not apply is reported as not applicable
with the reason, never checked, never gating and never in a fix.
"""

from __future__ import annotations

from dataclasses import dataclass

BOOTSTRAP = "rbac-bootstrap"
# remote_identity keywords that send SkyPilot down its default identity path.
DEFAULT_PATH_KEYWORDS = ("SERVICE_ACCOUNT", "LOCAL_CREDENTIALS", "NO_UPLOAD")
# SkyPilot bootstraps whenever its pods would run as this name, even when named outright
# (sky/provision/kubernetes/config.py compares serviceAccountName with it).
SKYPILOT_ACCOUNT = "skypilot-service-account"


@dataclass(frozen=True, slots=True)
class IdentityRole:
    """What an identity does for SkyPilot in one check."""

    launches: bool  # the kubeconfig identity that runs sky launch
    remote_identity: str  # the keyword or service account name in effect
    # The account SkyPilot's pods run as (the docs' setup: one account launches and is the
    # remote_identity), so what the pods do as themselves is checked too.
    pods: bool = False

    @property
    def bootstraps(self) -> bool:
        return self.launches and (
            # case-sensitive, as SkyPilot compares them (sky/clouds/kubernetes.py)
            self.remote_identity in DEFAULT_PATH_KEYWORDS
            or self.remote_identity == SKYPILOT_ACCOUNT
        )


# The caller with no setup to read: SkyPilot's default remote_identity.
DEFAULT_LAUNCHER = IdentityRole(True, "SERVICE_ACCOUNT")


def for_flags(sa: str | None, remote_identity: str | None) -> IdentityRole:
    """The role implied by identity flags.

    ``--sa NAME`` follows the docs' setup: the account launches and is also
    ``remote_identity`` (so SkyPilot bootstraps nothing), unless
    ``--remote-identity`` says otherwise. The caller and ``--as`` launch with
    SkyPilot's default, ``SERVICE_ACCOUNT``.
    """
    name = sa.rsplit(":", 1)[-1] if sa else None
    if remote_identity:
        return IdentityRole(True, remote_identity, pods=remote_identity == name)
    if name:
        return IdentityRole(True, name, pods=True)
    return DEFAULT_LAUNCHER


def not_applicable(role: IdentityRole) -> tuple[tuple[str, str], ...]:
    """(feature, reason) for every feature that does not concern this identity."""
    if role.bootstraps:
        return ()
    if not role.launches:
        reason = (
            "SkyPilot's pods run as this account; the launching identity creates the "
            "service account and its roles, not this account"
        )
    else:
        reason = (
            f"remote_identity is {role.remote_identity}: SkyPilot uses that service "
            "account as it is and creates no service account or roles"
        )
    return ((BOOTSTRAP, reason),)

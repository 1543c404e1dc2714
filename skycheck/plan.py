"""What a check will do: the request (the CLI's flags, frozen), checked before any work.

``CheckRequest`` is what the command line asked for; ``validate`` refuses flag combinations
that make no sense before anything is read. ``RunShape`` makes the ``CheckPlan`` of each
identity checked, with what every plan of a run shares, and ``subject_for`` turns the
identity flags of a ``Target`` into the subject to check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from skycheck import applicability, identity, outfile
from skycheck.engine import CheckPlan
from skycheck.errors import UsageError
from skycheck.models import FailOn, Profile, SkyPilotVersion, Subject
from skycheck.skyconfig_dialect import Dialect, for_version


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """The check the command line asked for: typer's parameters, lists as tuples."""

    sa: str | None = None
    namespace: str | None = None
    as_user: str | None = None
    as_groups: tuple[str, ...] = ()
    contexts: tuple[str, ...] = ()
    all_contexts: bool = False
    kubeconfig: str | None = None
    features: tuple[str, ...] = ()
    all_features: bool = False
    output: str = "table"
    output_file: Path | None = None
    fix_path: Path | None = None
    fail_on: str = "required"
    manifests: tuple[str, ...] = ()
    sky_config: Path | None = None
    no_sky_config: bool = False
    explain: bool = False
    timeout: float = 60.0
    request_timeout: float = 10.0
    max_inflight: int = 16
    debug: bool = False
    skypilot_version: str | None = None
    profile: str = "skypilot"
    remote_identity: str | None = None
    excess: bool = False  # also audit what the identity holds beyond the need
    fail_on_excess: str | None = None  # critical | high | medium | low; None: never gates
    least_privilege_path: Path | None = None  # --least-privilege PATH
    all_subjects: bool = False  # audit every subject that holds core (skycheck/subjects.py)
    service_accounts_of: tuple[str, ...] = ()  # audit every ServiceAccount of these namespaces

    @property
    def audits_subjects(self) -> bool:
        """An audit across the cluster: many identities, chosen from the RBAC read."""
        return self.all_subjects or bool(self.service_accounts_of)

    @property
    def audits_excess(self) -> bool:
        """--excess, or --fail-on-excess or --least-privilege (which need the audit)."""
        return (
            self.excess
            or self.fail_on_excess is not None
            or self.least_privilege_path is not None
            or self.audits_subjects
        )


@dataclass(frozen=True, slots=True)
class Target:
    """One thing to check: an identity on a context (or offline), with its plan."""

    plan: CheckPlan
    sa: str | None
    as_user: str | None
    as_groups: tuple[str, ...]
    notes: tuple[str, ...] = ()


def validate(req: CheckRequest) -> None:
    """Refuse flag combinations that make no sense, before anything is read."""
    if req.sa and req.as_user:
        raise UsageError("--sa and --as name two identities; pass one")
    if req.as_groups and not req.as_user:
        raise UsageError("--as-group needs --as")
    if req.all_contexts and req.contexts:
        raise UsageError("--all-contexts and --context exclude each other")
    if req.manifests and (req.contexts or req.all_contexts):
        raise UsageError("--manifests checks offline; it takes no --context")
    if req.audits_subjects:
        _validate_audit(req)
    if req.sky_config is not None and req.no_sky_config:
        raise UsageError("--sky-config and --no-sky-config exclude each other")
    if req.timeout <= 0 or req.request_timeout <= 0:
        raise UsageError("--timeout and --request-timeout must be positive")
    if not 1 <= req.max_inflight <= 256:
        raise UsageError("--max-inflight must be between 1 and 256")
    # Before any work: a link or a non-regular file is refused, not found out at the end.
    if req.output_file is not None:
        outfile.check_target(req.output_file, "--output-file")
    if req.fix_path is not None:
        outfile.check_target(req.fix_path, "--fix file")
    if req.least_privilege_path is not None:
        outfile.check_target(req.least_privilege_path, "--least-privilege file")


def _validate_audit(req: CheckRequest) -> None:
    flag = "--all-subjects" if req.all_subjects else "--service-accounts-of"
    if req.sa or req.as_user:
        raise UsageError(f"{flag} chooses the identities itself; it takes no --sa or --as")
    if not req.manifests:
        raise UsageError(
            f"{flag} needs --manifests (offline): dump the cluster's RBAC with "
            "kubectl get roles,clusterroles,rolebindings,clusterrolebindings,serviceaccounts "
            "-A -o json > rbac.json, then pass --manifests rbac.json"
        )
    for ns in req.service_accounts_of:
        identity.validate_namespace(ns)


def is_multi(req: CheckRequest) -> bool:
    """Several reports were asked for (the multi-report JSON form), whatever their count."""
    return req.all_contexts or len(req.contexts) > 1 or req.audits_subjects


def sa_namespace(sa: str | None) -> str | None:
    """The namespace written into ``--sa NS:NAME`` (or the full username), if any."""
    return identity.split_service_account(sa)[0] if sa else None


def subject_for(target: Target) -> Subject | None:
    """The subject named by flags, or None for "the caller"."""
    if target.sa:
        return identity.service_account(target.sa, target.plan.namespace)
    if target.as_user:
        return identity.user(target.as_user, target.as_groups)
    return None


@dataclass(frozen=True, slots=True)
class RunShape:
    """What every plan of a run shares: the SkyPilot version and the gating profile."""

    skypilot: SkyPilotVersion
    profile: Profile

    @property
    def dialect(self) -> Dialect:
        """How the checked SkyPilot release reads its config (skycheck/skyconfig_dialect.py)."""
        return for_version(self.skypilot.version)

    def plan(
        self,
        namespace: str,
        features: tuple[str, ...],
        required: tuple[str, ...],
        fail_on: FailOn,
        context: str | None,
        role: applicability.IdentityRole,
    ) -> CheckPlan:
        return CheckPlan(
            namespace,
            features,
            required,
            fail_on,
            context,
            skypilot=self.skypilot,
            profile=self.profile,
            not_applicable=applicability.not_applicable(role),
            pods_account=role.pods,
        )

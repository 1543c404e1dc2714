"""A check request's execution: plan -> run -> emit.

``execute`` validates the request (``plan.py``), selects the features and the SkyPilot
version, runs the check offline (here: one report over the manifests) or live
(``live_run.py``: one report per context and identity), adds the fixes and writes the
output (``emit.py``), and returns the exit code of the worst report that gates. It raises
``SkycheckError`` for anything the user must fix; the CLI turns that into one line.
``collect`` alone runs the checks and returns the reports, which ``finish`` writes (the
watcher and the GitHub Action render them more than once).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from skycheck import applicability, identity
from skycheck.catalogue import Catalogue, load_catalogue, select_features
from skycheck.emit import emit, with_fix, write_fix, write_least_privilege
from skycheck.engine import run_check
from skycheck.errors import ExitCode, SkycheckError, UsageError
from skycheck.models import (
    FailOn,
    Profile,
    Report,
    Requirement,
    Subject,
    gate_verdict,
    verdict_exit_code,
)
from skycheck.plan import (
    CheckRequest,
    RunShape,
    Target,
    is_multi,
    sa_namespace,
    subject_for,
    validate,
)

if TYPE_CHECKING:
    from skycheck.engine import CheckPlan
    from skycheck.manifests import Manifests
    from skycheck.review.offline import OfflineReviewer


def execute(req: CheckRequest) -> int:
    """Run the request; return the process exit code."""
    return finish(req, collect(req))


@dataclass(frozen=True, slots=True)
class Outcome:
    """A check's reports before they are written anywhere (the watcher and the GitHub
    Action render them more than once)."""

    reports: tuple[Report, ...]
    multi: bool  # the multi-report form
    per_context: bool  # one fix file per context

    @property
    def payload(self) -> Report | list[Report]:
        """What ``render`` takes: the lone report, or the list in the multi form."""
        return list(self.reports) if self.multi else self.reports[0]

    @property
    def exit_code(self) -> int:
        return verdict_exit_code(gate_verdict(list(self.reports)))


def finish(req: CheckRequest, outcome: Outcome) -> int:
    """Write the fix and the report as the request says; return the exit code."""
    reports = list(outcome.reports)
    if req.fix_path is not None:
        write_fix(req.fix_path, reports, outcome.per_context)
    if req.least_privilege_path is not None:
        write_least_privilege(req.least_privilege_path, reports)
    emit(req, reports, outcome.multi, outcome.per_context)
    return outcome.exit_code


def collect(req: CheckRequest) -> Outcome:
    """Run the request's checks and return the reports (with their fixes), writing nothing."""
    validate(req)
    catalogue = load_catalogue()
    features, required = select_features(catalogue, req.features, req.all_features)
    fail_on = FailOn(req.fail_on)
    from skycheck import skypilot_version

    version, version_note = skypilot_version.select(
        req.skypilot_version, lambda: _api_server_endpoint(req)
    )
    shape = RunShape(version, Profile(req.profile))
    if req.manifests:
        reports = _offline(req, catalogue, features, required, fail_on, shape)
    else:
        from skycheck.live_run import run_live

        reports = run_live(req, catalogue, features, required, fail_on, shape)
    if version_note:
        reports = [replace(r, warnings=(version_note, *r.warnings)) for r in reports]
    multi = is_multi(req) or len(reports) > 1
    # One fix file per context only when several contexts were checked; the identities
    # of one context share its file (their objects have different names).
    per_context = is_multi(req) or len({r.context for r in reports}) > 1
    return Outcome(tuple(with_fix(r) for r in reports), multi, per_context)


def _api_server_endpoint(req: CheckRequest) -> str | None:
    """The SkyPilot API server the client points at: $SKYPILOT_API_SERVER_ENDPOINT, else
    the SkyPilot config's ``api_server.endpoint``. A config that cannot be read names
    none here; the check that reads it reports why."""
    import os

    from skycheck import skypilot_server
    from skycheck.live_run import sky_config

    try:
        sky = sky_config(req)
    except SkycheckError:
        sky = None
    return skypilot_server.endpoint(sky.api_server_endpoint if sky else None, os.environ)


def _offline(
    req: CheckRequest,
    catalogue: Catalogue,
    features: tuple[str, ...],
    required: tuple[str, ...],
    fail_on: FailOn,
    shape: RunShape,
) -> list[Report]:
    from skycheck.manifests import load_manifests
    from skycheck.review.offline import OfflineReviewer

    namespace = identity.validate_namespace(req.namespace or sa_namespace(req.sa) or "default")
    if req.audits_subjects:
        return _offline_audit(req, catalogue, namespace, features, required, fail_on, shape)
    loaded = load_manifests(list(req.manifests), default_namespace=namespace)
    reviewer = OfflineReviewer.from_manifests(loaded)
    if not (req.sa or req.as_user):
        return _offline_api_server(
            req, catalogue, loaded, reviewer, features, required, fail_on, shape
        )
    role = applicability.for_flags(req.sa, req.remote_identity)
    plan = shape.plan(namespace, features, required, fail_on, None, role)
    target = Target(plan, req.sa, req.as_user, req.as_groups)
    subject = subject_for(target)
    assert subject is not None  # an identity flag was given
    report = _with_excess(req, reviewer, run_check(catalogue, plan, subject, reviewer))
    return [_located(report, loaded, reviewer)]


def _offline_audit(
    req: CheckRequest,
    catalogue: Catalogue,
    namespace: str,
    features: tuple[str, ...],
    required: tuple[str, ...],
    fail_on: FailOn,
    shape: RunShape,
) -> list[Report]:
    """The audit across a cluster, with the garbage collector kept off what was read: the
    objects read all live to the end of the run, and a full pass over them, which the
    reports' many small objects would trigger again and again, would find nothing."""
    import gc

    from skycheck.manifests import load_manifests
    from skycheck.review.offline import OfflineReviewer

    gc.disable()
    try:
        loaded = load_manifests(list(req.manifests), default_namespace=namespace)
        reviewer = OfflineReviewer.from_manifests(loaded)
        gc.freeze()
    finally:
        gc.enable()
    try:
        return _audit(req, catalogue, loaded, reviewer, features, required, fail_on, shape)
    finally:
        gc.unfreeze()  # a caller in the same process (a test, the watcher) may free them


def _audit(
    req: CheckRequest,
    catalogue: Catalogue,
    loaded: Manifests,
    reviewer: OfflineReviewer,
    features: tuple[str, ...],
    required: tuple[str, ...],
    fail_on: FailOn,
    shape: RunShape,
) -> list[Report]:
    """Many identities over the manifests (``skycheck/subjects.py``): each gets the check
    and the excess audit. A service account is checked in its own namespace (where SkyPilot
    runs in-cluster), a user or group in ``-n`` (default ``default``); ``-n`` given applies
    to every identity."""
    from skycheck import subjects
    from skycheck.catalogue import bind
    from skycheck.render._common import subject_label as label

    state = reviewer.state
    # (subject, why it is covered); --service-accounts-of first: it covers whatever they hold.
    chosen: dict[tuple[str, str], tuple[Subject, str]] = {}
    if req.service_accounts_of:
        for s in subjects.service_accounts_of(
            state, req.service_accounts_of, loaded.service_accounts
        ):
            chosen[(s.kind, s.username)] = (s, f"a service account of namespace {s.namespace}")
    plans: dict[tuple[str, bool], CheckPlan] = {}

    def plan_for(subject: Subject) -> CheckPlan:
        # As --sa NAME (the account is its own remote_identity) or --as USER would check it.
        sa = subject.is_service_account
        ns = req.namespace or (subject.namespace if sa else None) or "default"
        if (ns, sa) not in plans:
            role = applicability.for_flags(subject.name if sa else None, req.remote_identity)
            plans[(ns, sa)] = shape.plan(ns, features, required, fail_on, None, role)
        return plans[(ns, sa)]

    core_needs: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[Requirement, ...]] = {}

    def core_for(plan: CheckPlan) -> tuple[Requirement, ...]:
        plan_key = (plan.namespace, plan.not_applicable)
        if plan_key not in core_needs:
            bound = bind(
                catalogue,
                plan.namespace,
                (subjects.CORE,),
                (subjects.CORE,),
                version=shape.skypilot.version,
                not_applicable=[name for name, _ in plan.not_applicable],
            )
            gating = [r for r in bound if shape.profile.gates(r.effect)]
            # Writes first: few subjects hold them, so most candidates stop at the first.
            gating.sort(key=lambda r: r.verb in ("get", "list", "watch"))
            core_needs[plan_key] = tuple(gating)
        return core_needs[plan_key]

    candidates: list[Subject] = []
    if req.all_subjects:
        for s in subjects.named_subjects(state):
            if (s.kind, s.username) not in chosen and subjects.holds(
                state, s, core_for(plan_for(s))
            ):
                candidates.append(s)
    reports = []
    for s, why in [*chosen.values(), *((c, "") for c in candidates)]:
        plan = plan_for(s)
        report = run_check(catalogue, plan, s, reviewer)
        if not why:
            if not subjects.holds_core(report):
                continue  # the full check says it cannot run SkyPilot after all
            why = f"holds {subjects.CORE} in namespace {plan.namespace}: can run SkyPilot"
        report = _with_excess(req, reviewer, report)
        report = replace(report, notes=(*report.notes, f"{label(s)}: audited, {why}"))
        # The summary table shows no check's file and line: only the other formats need them.
        reports.append(report if req.output == "table" else _located(report, loaded, reviewer))
    reports.sort(key=lambda r: subjects.key(r.subject))
    return reports


def _located(report: Report, loaded: Manifests, reviewer: OfflineReviewer) -> Report:
    """Each finding placed on the user's file and line (skycheck.locate)."""
    from skycheck.locate import locate_report

    return locate_report(report, loaded, reviewer.state)


def _with_excess(req: CheckRequest, reviewer: OfflineReviewer, report: Report) -> Report:
    """The report with its excess audit over the manifests, when asked for."""
    if not req.audits_excess:
        return report
    from skycheck import excess
    from skycheck.excess_types import Risk

    audit = excess.audit(reviewer.state, report, source="manifests")
    level = Risk(req.fail_on_excess) if req.fail_on_excess else None
    return replace(report, excess=audit, fail_on_excess=level)


def _offline_api_server(
    req: CheckRequest,
    catalogue: Catalogue,
    loaded: Manifests,
    reviewer: OfflineReviewer,
    features: tuple[str, ...],
    required: tuple[str, ...],
    fail_on: FailOn,
    shape: RunShape,
) -> list[Report]:
    """No identity flag: the SkyPilot API server Deployment in the manifests names it.

    Its ServiceAccount is checked as the in-cluster launcher with the SkyPilot config of its
    ConfigMap (``--sky-config`` wins), as SkyPilot resolves the in-cluster context, and so
    is the account its pods run as, as a live check of that setup would.
    """
    from skycheck import skyconfig
    from skycheck.live_run import identities_for, sky_config

    servers = loaded.api_servers
    if not servers:
        raise UsageError(
            "--manifests needs an identity: --sa NAME -n NS or --as USER "
            "(or the manifests of a SkyPilot API server Deployment)"
        )
    if len(servers) > 1:
        names = ", ".join(f"{s.namespace}/{s.name}" for s in servers)
        raise UsageError(
            f"the manifests hold {len(servers)} SkyPilot API server Deployments ({names}): "
            "pass --sa NAMESPACE:NAME for the one to check"
        )
    server = servers[0]
    account = f"{server.namespace}:{server.service_account}"
    if not server.in_cluster:
        raise UsageError(
            f"{server.describe()} does not mount a service-account token "
            f"(automountServiceAccountToken: false), so it does not launch as {account}: "
            "pass --sa or --as for the identity its kubeconfig holds"
        )
    found: list[str] = []  # where the config came from: said in every report
    sky = sky_config(req) if req.sky_config is not None or req.no_sky_config else None
    if sky is None and not req.no_sky_config and req.sky_config is None:
        if server.config_text is not None:
            sky = skyconfig.parse_sky_config_text(server.config_text, server.config_source)
            found.append(f"SkyPilot config from {server.config_source}")
        elif server.config_map is not None:
            found.append(
                f"its SkyPilot config (ConfigMap {server.config_map}) is not in the manifests: "
                "checked with SkyPilot's defaults"
            )
    view = skyconfig.KubeView(
        in_cluster=True, in_cluster_namespace=server.namespace, env=server.env
    )
    skyconfig.refuse_for_release(sky, shape.dialect)
    _, setups = skyconfig.resolve(sky, view, shape.dialect)
    setup = next((s for s in setups if s.context == view.in_cluster_name), None)
    if setup is None:
        raise UsageError(
            f"{server.describe()}: its SkyPilot config does not let it use its own cluster "
            f"(context {view.in_cluster_name} is not among kubernetes.allowed_contexts)"
        )
    if setup.error is not None:
        raise setup.error
    derivation = setup.derivation
    assert derivation is not None
    plain = replace(req, sa=None, as_user=None, as_groups=())
    reports = []
    for who in identities_for(plain, catalogue, derivation, features, required, fail_on):
        plan = shape.plan(
            derivation.namespace, who.features, who.required, who.fail_on, None, who.role
        )
        sa = account if who.is_caller else who.sa
        assert sa is not None
        subject = identity.service_account(sa, derivation.namespace)
        report = run_check(catalogue, plan, subject, reviewer, extra_warnings=derivation.warnings)
        who_note = (
            f"{account} is the account of {server.describe()}: checked as the in-cluster launcher"
            if who.is_caller
            else f"the account the pods of {server.describe()} run as"
        )
        notes = (who_note, *found, *derivation.notes)
        report = _with_excess(req, reviewer, report)
        reports.append(
            _located(replace(report, notes=notes, gates=not who.managed), loaded, reviewer)
        )
    return reports


__all__ = ["CheckRequest", "ExitCode", "Outcome", "collect", "execute", "finish"]

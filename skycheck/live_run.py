"""A live check: which contexts, which identities in each, and one report per pair.

The contexts are the flags' (``--context``, ``--all-contexts``), else the ones the SkyPilot
config makes SkyPilot use, else the kubeconfig's current one; up to 8 are checked in
parallel, each from one frozen ``_ContextRun``. The identities of a context are the flags'
one, else the caller and the pods' service account the SkyPilot config names (``_Who``).
An unreachable context becomes an all-unknown report when several are checked; the caller's
report is made whenever the server answers, and another identity the caller may not ask
about gets an unknown report of its own.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from skycheck import applicability, identity
from skycheck.catalogue import Catalogue
from skycheck.engine import run_check
from skycheck.errors import ConfigError, SkycheckError, UndecidedError, UsageError
from skycheck.models import FailOn, Report, Subject
from skycheck.plan import CheckRequest, RunShape, Target, is_multi, sa_namespace, subject_for

if TYPE_CHECKING:
    from skycheck.kube import Connection, ContextInfo, Kubeconfig, Limits
    from skycheck.review.live import LiveReviewer
    from skycheck.skyconfig import CheckIdentity, Derivation, KubeView, SkyConfig

MAX_CONTEXTS_IN_FLIGHT = 8


def run_live(
    req: CheckRequest,
    catalogue: Catalogue,
    features: tuple[str, ...],
    required: tuple[str, ...],
    fail_on: FailOn,
    shape: RunShape,
) -> list[Report]:
    """Every report of a live run: one per context and identity (see the module)."""
    from skycheck import kube, skyconfig

    config = kube.read_kubeconfig(req.kubeconfig)
    dialect = shape.dialect
    sky = sky_config(req)
    skyconfig.refuse_for_release(sky, dialect)
    view = _kube_view(config) if sky is not None else None
    selection = skyconfig.ContextSelection(())
    if req.all_contexts:
        contexts: list[str | None] = list(config.context_names())
        if not contexts:
            raise UsageError("--all-contexts: the kubeconfig has no contexts")
    elif req.contexts:
        contexts = list(req.contexts)
    elif sky is not None and view is not None:
        # No context flag: every context SkyPilot will use (kubernetes.allowed_contexts
        # and the environment variables SkyPilot reads).
        selection = skyconfig.select_contexts(
            sky,
            [name for name, _ in view.contexts],
            view.current,
            in_cluster=view.in_cluster,
            env=view.environ,
            dialect=dialect,
        )
        selection = replace(selection, warnings=(*view.warnings, *selection.warnings))
        if not selection.contexts:
            raise UsageError(
                f"{sky.source}: " + "; ".join(selection.warnings),
                hint="pass --context, or fix kubernetes.allowed_contexts",
            )
        contexts = list(selection.contexts)
    else:
        contexts = [None]
    limits = kube.Limits(
        request_timeout=req.request_timeout, deadline=req.timeout, max_inflight=req.max_inflight
    )
    multi = len(contexts) > 1 or is_multi(req)
    runs = [
        _ContextRun(
            req,
            catalogue,
            config,
            sky,
            view,
            context,
            features,
            required,
            fail_on,
            limits,
            multi,
            shape,
        )
        for context in contexts
    ]

    with _progress(f"checking {len(contexts)} context(s)" if multi else "checking"):
        if len(runs) == 1:
            reports = _live_context(runs[0])
        else:
            from concurrent.futures import ThreadPoolExecutor  # live only: 0.02 s with logging

            workers = min(MAX_CONTEXTS_IN_FLIGHT, len(runs))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                reports = [r for batch in pool.map(_live_context, runs) for r in batch]
    if selection.notes or selection.warnings:
        # allowed_contexts explains the whole run: say it once, on the first report.
        first = reports[0]
        reports[0] = replace(
            first,
            notes=(*selection.notes, *first.notes),
            warnings=tuple(dict.fromkeys((*selection.warnings, *first.warnings))),
        )
    return reports


@contextlib.contextmanager
def _progress(message: str) -> Iterator[None]:
    """A spinner on stderr while the API server is asked, only when stderr is a terminal
    (CI logs and pipes get no progress noise)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(f"skycheck: {message}...", spinner="dots"):
        yield


def sky_config(req: CheckRequest) -> SkyConfig | None:
    """The SkyPilot config shaping the check: --sky-config, else SkyPilot's own file, if any.

    A file named by ``$SKYPILOT_CONFIG`` or ``$SKYPILOT_GLOBAL_CONFIG`` must
    exist: SkyPilot refuses to start without it.
    """
    from skycheck import skyconfig

    if req.no_sky_config:
        return None
    if req.sky_config is not None:
        return skyconfig.load_sky_config(req.sky_config, missing_ok=False)
    path, variable = skyconfig.config_location()
    if variable is not None and not path.exists():
        raise ConfigError(
            skyconfig.display_path(path),
            "",
            f"SkyPilot config file named by ${variable} does not exist; SkyPilot refuses "
            "to start without it",
            hint=f"create it, or unset {variable}",
        )
    return skyconfig.load_sky_config(path, missing_ok=variable is None)


def _kube_view(config: Kubeconfig) -> KubeView:
    """What SkyPilot sees of Kubernetes here: the kubeconfig, a mounted token, the environment."""
    from skycheck import kube, skyconfig

    return skyconfig.kube_view(
        None if config.in_cluster else config.data,
        in_cluster=kube.IN_CLUSTER_TOKEN.exists(),
        in_cluster_namespace=kube.in_cluster_context().namespace,
    )


@dataclass(frozen=True, slots=True)
class _ContextRun:
    """Everything the check of one context needs, fixed before contexts run in parallel."""

    req: CheckRequest
    catalogue: Catalogue
    kubeconfig: Kubeconfig
    sky: SkyConfig | None
    view: KubeView | None  # what SkyPilot sees here; None without a SkyPilot config
    context: str | None  # None: the kubeconfig's current context
    features: tuple[str, ...]
    required: tuple[str, ...]
    fail_on: FailOn
    limits: Limits
    multi: bool
    shape: RunShape

    @property
    def in_cluster(self) -> bool:
        """This context is the pod's own service account (in-cluster config).

        Either there is no kubeconfig, or SkyPilot lists the in-cluster context
        beside the kubeconfig's (a token is mounted) and this is it.
        """
        if self.kubeconfig.in_cluster:
            return True
        view = self.view
        return (
            view is not None
            and view.in_cluster
            and self.context == view.in_cluster_name
            and self.context not in self.kubeconfig.context_names()
        )


@dataclass(frozen=True, slots=True)
class _Who:
    """One identity to check in a context: flags, features and gate."""

    sa: str | None  # None: --as, or the caller (whoami)
    as_user: str | None
    features: tuple[str, ...]
    required: tuple[str, ...]
    fail_on: FailOn
    managed: bool = False  # SkyPilot's own account: it may not exist before the first launch
    role: applicability.IdentityRole = applicability.DEFAULT_LAUNCHER

    @property
    def is_caller(self) -> bool:
        return self.sa is None and self.as_user is None


def identities_for(
    req: CheckRequest,
    catalogue: Catalogue,
    derivation: Derivation | None,
    features: tuple[str, ...],
    required: tuple[str, ...],
    fail_on: FailOn,
) -> list[_Who]:
    """Flags name one identity; otherwise the sky config names the caller and the pods' SA.

    Features derived from the config are added to the flags' selection (checked
    and required); SkyPilot's own account is shown but never gates.
    """
    flags_role = applicability.for_flags(req.sa, req.remote_identity)
    if derivation is None:
        return [_Who(req.sa, req.as_user, features, required, fail_on, role=flags_role)]
    launcher = applicability.IdentityRole(True, req.remote_identity or derivation.remote_identity)

    def widen(ident: CheckIdentity) -> tuple[tuple[str, ...], tuple[str, ...]]:
        checked = set(features) | set(ident.features)
        must = set(required) | set(ident.required_features)
        return (
            tuple(n for n in catalogue.names if n in checked),
            tuple(n for n in catalogue.names if n in must),
        )

    caller, account = derivation.identities
    if req.as_user:
        return [_Who(None, req.as_user, *widen(caller), fail_on, role=launcher)]
    if req.sa:
        named = identity.service_account(req.sa, derivation.namespace).name
        if named != account.service_account or account.managed:
            # Not the account SkyPilot manages: hold it to a custom account's bar.
            account = replace(account, required_features=account.features, managed=False)
        role = replace(launcher, pods=named == launcher.remote_identity)
        return [_Who(req.sa, None, *widen(account), fail_on, role=role)]
    out = [_Who(None, None, *widen(caller), fail_on, role=launcher)]
    checked, must = widen(account)
    gate = fail_on
    if account.managed and not req.all_features:
        # SkyPilot creates and grants this account itself (it may not exist before the
        # first launch): show what its pods need, never gate on it.
        wanted = set(account.features) | set(req.features)
        checked = tuple(n for n in catalogue.names if n in wanted)
        must, gate = (), FailOn.NEVER
    assert account.service_account is not None
    out.append(
        _Who(
            f"{account.namespace}:{account.service_account}",
            None,
            checked,
            must,
            gate,
            managed=account.managed and not req.all_features,
            role=applicability.IdentityRole(False, derivation.remote_identity, pods=True),
        )
    )
    return out


def _derive(run: _ContextRun, info: ContextInfo) -> Derivation | None:
    """What the SkyPilot config means for this context (None without a config)."""
    from skycheck import skyconfig

    if run.sky is None or run.view is None:
        return None
    name = run.context or info.name
    return skyconfig.derive(
        run.sky,
        name,
        None if run.in_cluster else info.namespace,
        run.view.kube_namespace(name)[1],
        exec_auth=info.exec_auth or info.auth_provider,
        namespace_flag=run.req.namespace or sa_namespace(run.req.sa),
        current_context=run.view.current,
        dialect=run.shape.dialect,
    )


def _live_context(run: _ContextRun) -> list[Report]:
    """Every identity of one context: one Report per (context, identity).

    The caller's report needs only SelfSubjectReview and SelfSubjectAccessReview,
    so it is made whenever the server answers. Another identity that the caller
    may not ask about gets an unknown report saying why, beside the caller's.
    """
    from skycheck import kube
    from skycheck.review.live import LiveReviewer

    req = run.req
    whos = [
        _Who(
            req.sa,
            req.as_user,
            run.features,
            run.required,
            run.fail_on,
            role=applicability.for_flags(req.sa, req.remote_identity),
        )
    ]
    namespace = req.namespace or sa_namespace(req.sa) or "default"
    context = run.context
    caller: Subject | None = None
    try:
        if run.in_cluster:
            kubeconfig = run.kubeconfig
            if not kubeconfig.in_cluster:
                kubeconfig = kube.Kubeconfig(paths=(), data={}, in_cluster=True)
            info = kube.in_cluster_context()
            conn_context = None
        else:
            kubeconfig = run.kubeconfig
            info = kubeconfig.context(context)
            conn_context = context
        context = run.context or info.name
        derivation = _derive(run, info)
        if derivation is None:
            namespace = req.namespace or sa_namespace(req.sa) or info.namespace or "default"
        else:
            namespace = derivation.namespace
        namespace = identity.validate_namespace(namespace)
        whos = identities_for(
            req, run.catalogue, derivation, run.features, run.required, run.fail_on
        )
        warnings = derivation.warnings if derivation else _context_warnings(info)
        if run.kubeconfig.in_cluster:
            warnings = (
                "no kubeconfig: running in a pod, checking with its service account "
                "(in-cluster config)",
                *warnings,
            )
        elif run.in_cluster:
            warnings = (
                f"context {context}: a service-account token is mounted, so SkyPilot also "
                "uses the pod's own account (in-cluster config) beside the kubeconfig's contexts",
                *warnings,
            )
        notes = derivation.notes if derivation else ()
        conn = kube.Connection(kubeconfig, conn_context, replace(run.limits))
        try:
            reports: list[Report] = []
            seen: set[str] = set()
            for who in whos:
                plan = run.shape.plan(
                    namespace, who.features, who.required, who.fail_on, context, who.role
                )
                target = Target(plan, who.sa, who.as_user, req.as_groups if who.as_user else ())
                subject = subject_for(target)
                reviewer = LiveReviewer(
                    conn, self_check=subject is None, lookup_account=not who.managed
                )
                if subject is None:
                    subject = caller = _whoami(reviewer, info)
                if subject.username in seen:
                    continue  # the kubeconfig user is the pods' account: checked once
                seen.add(subject.username)
                try:
                    report = run_check(
                        run.catalogue, plan, subject, reviewer, extra_warnings=warnings
                    )
                except UndecidedError as exc:
                    if who.is_caller or (len(whos) == 1 and not run.multi):
                        raise
                    # Not allowed to ask about this identity: say so in its own report,
                    # and keep the caller's.
                    report = _unknown(run, context, namespace, who, exc, subject)
                else:
                    report = _with_excess(req, report, conn, who.is_caller)
                reports.append(replace(report, notes=notes, gates=not who.managed))
            return reports
        finally:
            conn.close()
    except SkycheckError as exc:
        if not run.multi:
            raise
        # One unreachable or misconfigured context must not stop the others: it is unknown.
        return [
            _unknown(run, context, namespace, who, exc, caller if who.is_caller else None)
            for who in whos
        ]


def _with_excess(req: CheckRequest, report: Report, conn: Connection, is_caller: bool) -> Report:
    """The report with its live excess audit, when asked for (docs/excess.md)."""
    if not req.audits_excess:
        return report
    from skycheck.excess_live import audit_live

    return _excess_level(req, replace(report, excess=audit_live(conn, report, is_caller=is_caller)))


def _excess_level(req: CheckRequest, report: Report) -> Report:
    """The --fail-on-excess level on a report; an unaudited report's excess is unknown."""
    if not req.audits_excess:
        return report
    from skycheck.excess_types import Risk

    if report.excess is None:
        from skycheck.excess import unknown

        report = replace(report, excess=unknown("the identity could not be checked"))
    level = Risk(req.fail_on_excess) if req.fail_on_excess else None
    return replace(report, fail_on_excess=level)


def _whoami(reviewer: LiveReviewer, info: ContextInfo) -> Subject:
    try:
        username, groups, uid = reviewer.whoami()
    except SkycheckError as exc:
        if info.exec_auth and not exc.hint:
            exc.hint = (
                f"context {info.name} authenticates with an exec plugin; "
                "check that the plugin runs and returns credentials"
            )
        raise
    return identity.from_whoami(username, groups, uid)


def _unknown(
    run: _ContextRun,
    context: str | None,
    namespace: str,
    who: _Who,
    exc: SkycheckError,
    subject: Subject | None = None,
) -> Report:
    """The report for an identity that could not be checked: every check unknown.

    Its namespace is the one SkyPilot uses for the context; its warning says
    why and, when the caller may not ask about the identity, what would allow it.
    """
    from skycheck.catalogue import bind
    from skycheck.models import Decision, Finding, Method

    plan = run.shape.plan(namespace, who.features, who.required, who.fail_on, context, who.role)
    if subject is None:
        try:
            subject = subject_for(Target(plan, who.sa, who.as_user, run.req.as_groups))
        except SkycheckError:
            subject = None
    reason = f"not checked: {exc.one_line()}"
    why = f"context {context}: {exc.one_line()}"
    if exc.hint:
        why += f" ({exc.hint})"
    report = Report(
        mode="live",
        method=Method.SSAR if who.is_caller else Method.SAR,
        context=context,
        namespace=namespace,
        subject=subject or Subject.user("unknown"),
        findings=tuple(
            Finding(r, Decision.UNKNOWN, reason)
            for r in bind(
                run.catalogue,
                namespace,
                who.features,
                who.required,
                version=run.shape.skypilot.version,
                not_applicable=[name for name, _ in plan.not_applicable],
                pods_account=plan.pods_account,
            )
        ),
        features=who.features,
        required_features=who.required,
        warnings=(why,),
        fail_on=who.fail_on,
        gates=not who.managed,
        skypilot=run.shape.skypilot,
        profile=run.shape.profile,
        not_applicable=plan.not_applicable,
    )
    return _excess_level(run.req, report)


def _context_warnings(info: object) -> tuple[str, ...]:
    from skycheck import kube

    assert isinstance(info, kube.ContextInfo)
    out = []
    if info.exec_auth:
        out.append(
            f"context {info.name} uses exec-based authentication: with remote_identity "
            "LOCAL_CREDENTIALS SkyPilot copies this kubeconfig into the cluster, where the "
            "exec plugin is missing and authentication fails"
        )
    return tuple(out)

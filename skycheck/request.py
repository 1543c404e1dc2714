"""A check request (the CLI's flags, frozen) and its execution.

``execute`` picks the reviewer (live or offline), runs one check per context
and identity, renders, writes the fix-it manifest, prints warnings to stderr
and returns the exit code. It raises ``SkycheckError`` for anything the user
must fix; the CLI turns that into one line.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from skycheck import identity
from skycheck.catalogue import Catalogue, load_catalogue, select_features
from skycheck.engine import CheckPlan, run_check
from skycheck.errors import ExitCode, SkycheckError, UsageError
from skycheck.models import FailOn, Report, Subject, verdict_exit_code, worst
from skycheck.secrets import redact

MAX_CONTEXTS_IN_FLIGHT = 8


@dataclass(frozen=True)
class CheckRequest:
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


@dataclass(frozen=True)
class Target:
    """One thing to check: an identity on a context (or offline), with its plan."""

    plan: CheckPlan
    sa: str | None
    as_user: str | None
    as_groups: tuple[str, ...]
    notes: tuple[str, ...] = ()


def _validate(req: CheckRequest) -> None:
    if req.sa and req.as_user:
        raise UsageError("--sa and --as name two identities; pass one")
    if req.as_groups and not req.as_user:
        raise UsageError("--as-group needs --as")
    if req.all_contexts and req.contexts:
        raise UsageError("--all-contexts and --context exclude each other")
    if req.manifests and (req.contexts or req.all_contexts):
        raise UsageError("--manifests checks offline; it takes no --context")
    if req.manifests and not (req.sa or req.as_user):
        raise UsageError("--manifests needs an identity: --sa NAME -n NS or --as USER")
    if req.timeout <= 0 or req.request_timeout <= 0:
        raise UsageError("--timeout and --request-timeout must be positive")
    if not 1 <= req.max_inflight <= 256:
        raise UsageError("--max-inflight must be between 1 and 256")


def _sa_namespace(sa: str | None) -> str | None:
    """The namespace written into ``--sa NS:NAME`` (or the full username), if any."""
    if not sa or ":" not in sa:
        return None
    parts = sa.split(":")
    return parts[2] if sa.startswith("system:serviceaccount:") and len(parts) == 4 else parts[0]


def _subject_for(target: Target) -> Subject | None:
    """The subject named by flags, or None for "the caller"."""
    if target.sa:
        return identity.service_account(target.sa, target.plan.namespace)
    if target.as_user:
        return identity.user(target.as_user, target.as_groups)
    return None


def execute(req: CheckRequest) -> int:
    """Run the request; return the process exit code."""
    _validate(req)
    catalogue = load_catalogue()
    features, required = select_features(catalogue, req.features, req.all_features)
    fail_on = FailOn(req.fail_on)
    if req.manifests:
        reports = [_offline(req, catalogue, features, required, fail_on)]
    else:
        reports = _live(req, catalogue, features, required, fail_on)
    multi = _is_multi(req)
    reports = [_with_fix(r) for r in reports]
    if req.fix_path is not None:
        _write_fix(req.fix_path, reports, multi)
    _emit(req, reports, multi)
    return verdict_exit_code(worst([r.verdict for r in reports]))


def _is_multi(req: CheckRequest) -> bool:
    """Several reports were asked for (the multi-report JSON form), whatever their count."""
    return req.all_contexts or len(req.contexts) > 1


def _offline(
    req: CheckRequest,
    catalogue: Catalogue,
    features: tuple[str, ...],
    required: tuple[str, ...],
    fail_on: FailOn,
) -> Report:
    from skycheck.manifests import load_manifests
    from skycheck.review.offline import OfflineReviewer

    namespace = identity.validate_namespace(req.namespace or _sa_namespace(req.sa) or "default")
    loaded = load_manifests(list(req.manifests), default_namespace=namespace)
    reviewer = OfflineReviewer.from_manifests(loaded)
    plan = CheckPlan(namespace, features, required, fail_on, None)
    target = Target(plan, req.sa, req.as_user, req.as_groups)
    subject = _subject_for(target)
    assert subject is not None  # _validate requires an identity offline
    return run_check(catalogue, plan, subject, reviewer)


def _live(
    req: CheckRequest,
    catalogue: Catalogue,
    features: tuple[str, ...],
    required: tuple[str, ...],
    fail_on: FailOn,
) -> list[Report]:
    from skycheck import kube

    config = kube.read_kubeconfig(req.kubeconfig)
    if req.all_contexts:
        contexts: list[str | None] = list(config.context_names())
        if not contexts:
            raise UsageError("--all-contexts: the kubeconfig has no contexts")
    else:
        contexts = list(req.contexts) or [None]
    limits = kube.Limits(
        request_timeout=req.request_timeout, deadline=req.timeout, max_inflight=req.max_inflight
    )

    def one(context: str | None) -> Report:
        return _live_one(req, catalogue, config, context, features, required, fail_on, limits)

    if len(contexts) == 1:
        return [one(contexts[0])]
    with ThreadPoolExecutor(max_workers=min(MAX_CONTEXTS_IN_FLIGHT, len(contexts))) as pool:
        return list(pool.map(one, contexts))


def _live_one(
    req: CheckRequest,
    catalogue: Catalogue,
    config: object,
    context: str | None,
    features: tuple[str, ...],
    required: tuple[str, ...],
    fail_on: FailOn,
    limits: object,
) -> Report:
    from skycheck import kube
    from skycheck.models import Decision, Finding, Method
    from skycheck.review.live import LiveReviewer

    assert isinstance(config, kube.Kubeconfig) and isinstance(limits, kube.Limits)
    multi = len(req.contexts) > 1 or req.all_contexts
    try:
        info = (
            kube.ContextInfo("in-cluster", "", "", "", None, False, False)
            if config.in_cluster
            else config.context(context)
        )
        namespace = identity.validate_namespace(
            req.namespace or _sa_namespace(req.sa) or info.namespace or "default"
        )
        plan = CheckPlan(namespace, features, required, fail_on, info.name)
        target = Target(plan, req.sa, req.as_user, req.as_groups)
        conn = kube.Connection(config, context, replace(limits))
        try:
            reviewer = LiveReviewer(conn, self_check=_subject_for(target) is None)
            subject = _subject_for(target)
            if subject is None:
                try:
                    username, groups, uid = reviewer.whoami()
                except SkycheckError as exc:
                    if info.exec_auth and not exc.hint:
                        exc.hint = (
                            f"context {info.name} authenticates with an exec plugin; "
                            "check that the plugin runs and returns credentials"
                        )
                    raise
                subject = identity.from_whoami(username, groups, uid)
            return run_check(
                catalogue, plan, subject, reviewer, extra_warnings=_context_warnings(info)
            )
        finally:
            conn.close()
    except SkycheckError as exc:
        if not multi:
            raise
        # One unreachable context must not stop the others: it is unknown.
        from skycheck.catalogue import bind

        ns = req.namespace or "default"
        plan = CheckPlan(ns, features, required, fail_on, context)
        reqs = bind(catalogue, ns, features, required)
        reason = f"not checked: {exc.one_line()}"
        return Report(
            mode="live",
            method=Method.SAR if (req.sa or req.as_user) else Method.SSAR,
            context=context,
            namespace=ns,
            subject=_subject_for(Target(plan, req.sa, req.as_user, req.as_groups))
            or Subject.user("unknown"),
            findings=tuple(Finding(r, Decision.UNKNOWN, reason) for r in reqs),
            features=features,
            required_features=required,
            warnings=(f"context {context}: {exc.one_line()}",),
            fail_on=fail_on,
        )


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


def _with_fix(report: Report) -> Report:
    from skycheck.fixit import fix_manifest

    return replace(report, fix=fix_manifest(report))


def _write_fix(path: Path, reports: list[Report], multi: bool) -> None:
    """Write each report's fix; with several contexts, one file per context.

    Fix objects are named after the subject, so two contexts' fixes in one file
    would overwrite each other when applied.
    """
    from skycheck.fixit import fix_path_for

    for report in reports:
        target = Path(fix_path_for(str(path), report.context if multi else None))
        try:
            if report.fix:
                target.write_text(report.fix, encoding="utf-8")
            elif target.exists():
                target.unlink()  # nothing to fix: do not leave a stale manifest behind
        except OSError as exc:
            raise UsageError(f"cannot write --fix file {target}: {exc.strerror or exc}") from None


def _emit(req: CheckRequest, reports: list[Report], multi: bool) -> None:
    from skycheck.render import OutputFormat, render

    for report in reports:
        for warning in report.warnings:
            sys.stderr.write(f"skycheck: warning: {redact(warning)}\n")
    color = req.output == "table" and req.output_file is None and sys.stdout.isatty()
    payload = reports if multi else reports[0]
    text = render(
        payload,
        OutputFormat(req.output),
        color=color,
        fix_path=str(req.fix_path) if req.fix_path else None,
    )
    text = redact(text)
    if req.output_file is not None:
        try:
            req.output_file.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"cannot write --output-file {req.output_file}: {exc.strerror or exc}"
            ) from None
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


__all__ = ["CheckRequest", "ExitCode", "execute"]

"""A check request's execution: plan -> run -> emit.

``execute`` validates the request (``plan.py``), selects the features and the SkyPilot
version, runs the check offline (here: one report over the manifests) or live
(``live_run.py``: one report per context and identity), adds the fixes and writes the
output (``emit.py``), and returns the exit code of the worst report that gates. It raises
``SkycheckError`` for anything the user must fix; the CLI turns that into one line.
"""

from __future__ import annotations

from dataclasses import replace

from skycheck import applicability, identity
from skycheck.catalogue import Catalogue, load_catalogue, select_features
from skycheck.emit import emit, with_fix, write_fix
from skycheck.engine import run_check
from skycheck.errors import ExitCode
from skycheck.models import FailOn, Profile, Report, gate_verdict, verdict_exit_code
from skycheck.plan import (
    CheckRequest,
    RunShape,
    Target,
    is_multi,
    sa_namespace,
    subject_for,
    validate,
)


def execute(req: CheckRequest) -> int:
    """Run the request; return the process exit code."""
    validate(req)
    catalogue = load_catalogue()
    features, required = select_features(catalogue, req.features, req.all_features)
    fail_on = FailOn(req.fail_on)
    from skycheck import skypilot_version

    version, version_note = skypilot_version.select(req.skypilot_version)
    shape = RunShape(version, Profile(req.profile))
    if req.manifests:
        reports = [_offline(req, catalogue, features, required, fail_on, shape)]
    else:
        from skycheck.live_run import run_live

        reports = run_live(req, catalogue, features, required, fail_on, shape)
    if version_note:
        reports = [replace(r, warnings=(version_note, *r.warnings)) for r in reports]
    multi = is_multi(req) or len(reports) > 1
    # One fix file per context only when several contexts were checked; the identities
    # of one context share its file (their objects have different names).
    per_context = is_multi(req) or len({r.context for r in reports}) > 1
    reports = [with_fix(r) for r in reports]
    if req.fix_path is not None:
        write_fix(req.fix_path, reports, per_context)
    emit(req, reports, multi, per_context)
    return verdict_exit_code(gate_verdict(reports))


def _offline(
    req: CheckRequest,
    catalogue: Catalogue,
    features: tuple[str, ...],
    required: tuple[str, ...],
    fail_on: FailOn,
    shape: RunShape,
) -> Report:
    from skycheck.manifests import load_manifests
    from skycheck.review.offline import OfflineReviewer

    namespace = identity.validate_namespace(req.namespace or sa_namespace(req.sa) or "default")
    loaded = load_manifests(list(req.manifests), default_namespace=namespace)
    reviewer = OfflineReviewer.from_manifests(loaded)
    role = applicability.for_flags(req.sa, req.remote_identity)
    plan = shape.plan(namespace, features, required, fail_on, None, role)
    target = Target(plan, req.sa, req.as_user, req.as_groups)
    subject = subject_for(target)
    assert subject is not None  # validate requires an identity offline
    return run_check(catalogue, plan, subject, reviewer)


__all__ = ["CheckRequest", "ExitCode", "execute"]

"""Verdicts and exit codes: fail closed, distinct codes, fail-on modes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from skycheck.catalogue import bind, load_catalogue, select_features
from skycheck.models import (
    Decision,
    FailOn,
    Finding,
    Method,
    Report,
    Subject,
    Verdict,
    gate_verdict,
    worst,
)


def _report(decide, fail_on=FailOn.REQUIRED):
    cat = load_catalogue()
    features, required = select_features(cat, [], False)
    reqs = bind(cat, "default", features, required)
    findings = tuple(Finding(r, decide(r)) for r in reqs)
    return Report(
        "live",
        Method.SAR,
        "ctx",
        "default",
        Subject.service_account("sky-sa", "default"),
        findings,
        features,
        required,
        fail_on=fail_on,
    )


def test_all_allowed_passes_with_exit_0():
    r = _report(lambda req: Decision.ALLOWED)
    assert (r.verdict, r.exit_code) == (Verdict.PASS, 0)


def test_optional_denial_does_not_fail_by_default_but_does_with_fail_on_optional():
    deny_gpus = lambda req: Decision.DENIED if req.feature == "show-gpus" else Decision.ALLOWED  # noqa: E731
    assert _report(deny_gpus).exit_code == 0
    assert _report(deny_gpus, FailOn.OPTIONAL).exit_code == 1
    statuses = {s.name: s.status for s in _report(deny_gpus).feature_statuses()}
    assert statuses["show-gpus"] is Verdict.FAIL and statuses["core"] is Verdict.PASS


def test_unknown_is_never_a_pass():
    r = _report(lambda req: Decision.UNKNOWN if req.resource == "nodes" else Decision.ALLOWED)
    assert (r.verdict, r.exit_code) == (Verdict.UNKNOWN, 3)


def test_denial_wins_over_unknown():
    def decide(req):
        if req.resource == "nodes":
            return Decision.UNKNOWN
        return Decision.DENIED if req.resource == "pods" else Decision.ALLOWED

    assert _report(decide).exit_code == 1


@pytest.mark.parametrize(("decision", "code"), [(Decision.DENIED, 0), (Decision.UNKNOWN, 3)])
def test_fail_on_never_ignores_denials_but_not_unknowns(decision, code):
    r = _report(lambda req: decision if req.feature == "core" else Decision.ALLOWED, FailOn.NEVER)
    assert r.exit_code == code


def test_worst_orders_fail_over_unknown_over_pass():
    assert worst([Verdict.PASS, Verdict.UNKNOWN]) is Verdict.UNKNOWN
    assert worst([Verdict.UNKNOWN, Verdict.FAIL, Verdict.PASS]) is Verdict.FAIL
    assert worst([]) is Verdict.PASS


def test_service_account_subject_carries_token_groups():
    s = Subject.service_account("sky-sa", "team")
    assert s.username == "system:serviceaccount:team:sky-sa"
    assert s.groups == (
        "system:serviceaccounts",
        "system:serviceaccounts:team",
        "system:authenticated",
    )
    u = Subject.user("system:serviceaccount:team:sky-sa")
    assert u.is_service_account and u.groups == s.groups


@pytest.mark.parametrize("fail_on", list(FailOn))
def test_a_report_with_nothing_decided_is_unknown_never_pass(fail_on):
    # SkyPilot's own account is shown under fail-on never with no required feature:
    # with nothing decided it used to read "pass".
    r = _report(lambda req: Decision.UNKNOWN, fail_on)
    informational = replace(r, required_features=(), fail_on=FailOn.NEVER, gates=False)
    assert r.verdict is Verdict.UNKNOWN
    assert informational.verdict is Verdict.UNKNOWN


def test_only_reports_that_gate_reach_the_run_verdict():
    passed = _report(lambda req: Decision.ALLOWED)
    shown = replace(_report(lambda req: Decision.UNKNOWN), gates=False)
    failed = _report(lambda req: Decision.DENIED)
    assert gate_verdict([passed, shown]) is Verdict.PASS
    assert gate_verdict([passed, replace(shown, gates=True)]) is Verdict.UNKNOWN
    assert gate_verdict([shown, failed]) is Verdict.FAIL

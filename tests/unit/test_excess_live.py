"""The live excess audit's fallbacks, with answers a real RBAC-only apiserver cannot give on
demand (an incomplete SelfSubjectRulesReview needs a webhook authorizer): a fake connection
that forbids listing RBAC objects and answers rules reviews as told. The real server's
answers are in tests/integration/test_excess_live.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from skycheck.excess_live import audit_live
from skycheck.excess_types import ExcessState
from skycheck.kube import Response
from skycheck.models import Verdict
from skycheck.request import CheckRequest, collect

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS_SA = ROOT / "tests" / "manifests" / "create-sky-sa.yaml"


class FakeConnection:
    """Forbids every list; answers each SelfSubjectRulesReview with ``review`` (or ``status``)."""

    def __init__(self, review: dict[str, Any] | None, status: int = 201) -> None:
        self.review = review
        self.status = status
        self.asked: list[tuple[str, str]] = []

    def request(self, method: str, path: str, body: Any = None, headers: Any = None) -> Response:
        self.asked.append((method, path))
        if method == "GET":
            return Response(403, {"message": "forbidden"})
        return Response(self.status, {"status": self.review} if self.review else {})


def _report():
    req = CheckRequest(
        sa="sky-sa", namespace="default", manifests=(str(DOCS_SA),), skypilot_version="0.14.1"
    )
    return collect(req).reports[0]


SECRETS = {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["secrets"]}


def test_an_incomplete_rules_review_is_said_and_its_rules_still_count():
    conn = FakeConnection(
        {
            "resourceRules": [SECRETS],
            "nonResourceRules": [],
            "incomplete": True,
            "evaluationError": "webhook authorizer does not support user rule resolution",
        }
    )
    got = audit_live(conn, _report(), is_caller=True)
    assert got.state is ExcessState.INCOMPLETE and got.source == "SelfSubjectRulesReview"
    assert any("incomplete" in n and "webhook" in n for n in got.notes)
    secrets = {(i.verb, i.namespace) for i in got.items if i.resource == "secrets"}
    assert ("get", "default") in secrets and ("list", "default") in secrets
    assert all(g.role_kind == "SelfSubjectRulesReview" for i in got.items for g in i.granted_by)
    # Only the namespaces the checks name were reviewed, after the lists were refused.
    assert ("GET", "/apis/rbac.authorization.k8s.io/v1/roles") in conn.asked
    assert sum(m == "POST" for m, _ in conn.asked) == 3  # default, ingress-nginx, skypilot-system


def test_nothing_readable_is_unknown_never_no_excess():
    refused = audit_live(FakeConnection(None, status=403), _report(), is_caller=True)
    assert refused.state is ExcessState.UNKNOWN and refused.items == ()
    assert "excess unknown" in refused.notes[0]
    # Someone else than the caller: a rules review cannot answer for them.
    other = audit_live(FakeConnection({"resourceRules": [SECRETS]}), _report(), is_caller=False)
    assert other.state is ExcessState.UNKNOWN
    gated = replace(_report(), excess=other, fail_on_excess=None)
    assert gated.verdict is Verdict.PASS  # unknown excess gates only under --fail-on-excess

"""Clusters before 1.28: SelfSubjectReview only as v1beta1 or v1alpha1, or not at all.

The real 1.37 apiserver serves v1 (and no longer the older versions), so the fault proxy
answers 404 for the paths an old server would not serve and forwards everything else to
the real apiserver: the access reviews themselves stay real.
"""

from __future__ import annotations

import json

import pytest

from tests.faults.proxy import Forward, Respond, status, when
from tests.reliability._util import invoke, write_kubeconfig

pytestmark = pytest.mark.cluster

SSR = "/apis/authentication.k8s.io/{}/selfsubjectreviews"
V1 = SSR.format("v1")


@pytest.fixture(scope="module", autouse=True)
def system_namespaces(cluster):
    for name in ("skypilot-system", "ingress-nginx"):
        cluster.create_namespace(name, exist_ok=True)


def _not_found(request):
    return request.path.startswith(V1)


def test_without_self_subject_review_the_caller_is_checked_by_ssar(
    cluster, fault_proxy, proxy_pki, tmp_path
):
    proxy = fault_proxy(when(_not_found, status(404)))
    kubeconfig = write_kubeconfig(
        tmp_path / "kc", proxy.url, token=cluster.user_token("bob"), ca=proxy_pki.ca_cert
    )
    fix = tmp_path / "fix.yaml"
    outcome = invoke(["--kubeconfig", kubeconfig, "-o", "json", "--fix", fix])
    report = outcome.report
    # Never an invented name: the subject says it is unknown.
    assert report["subject"]["username"] == ""
    assert report["subject"]["name"] == "(unknown)"
    assert report["method"] == "SelfSubjectAccessReview"
    assert any("serves no SelfSubjectReview" in w for w in report["warnings"])
    # Real answers for bob (he holds nothing beyond the defaults): decided, and missing.
    decisions = {c["decision"] for c in report["checks"]}
    assert "unknown" not in decisions and "denied" in decisions
    assert outcome.code == 1
    assert not fix.exists() and report["fix"] is None  # no one to bind a fix to
    # v1, then the versions an older server would serve, in that order.
    asked = [s.request.path for s in proxy.seen if "selfsubjectreviews" in s.request.path]
    assert asked == [SSR.format(v) for v in ("v1", "v1beta1", "v1alpha1")]


def test_a_beta_self_subject_review_names_the_caller(cluster, fault_proxy, proxy_pki, tmp_path):
    beta = {
        "apiVersion": "authentication.k8s.io/v1beta1",
        "kind": "SelfSubjectReview",
        "status": {"userInfo": {"username": "bob", "groups": ["system:authenticated"]}},
    }
    answer = Respond(201, json.dumps(beta).encode(), (("Content-Type", "application/json"),))

    def policy(request):
        if request.path.startswith(V1):
            return status(404)
        if request.path.startswith(SSR.format("v1beta1")):
            return answer
        return Forward()

    proxy = fault_proxy(policy)
    kubeconfig = write_kubeconfig(
        tmp_path / "kc", proxy.url, token=cluster.user_token("bob"), ca=proxy_pki.ca_cert
    )
    outcome = invoke(["--kubeconfig", kubeconfig, "-o", "json"])
    assert outcome.report["subject"]["username"] == "bob"
    assert outcome.code == 1
    asked = [s.request.path for s in proxy.seen if "selfsubjectreviews" in s.request.path]
    assert asked == [SSR.format("v1"), SSR.format("v1beta1")]

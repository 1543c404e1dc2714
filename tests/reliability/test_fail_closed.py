"""Fail closed under faults: no fault ever turns into verdict "pass" or exit 0.

The identity under test is usually the cluster admin (``system:masters``): without a fault it
passes every check, so any fault that leaked through as "allowed" would show up as a false
pass. Faults come from a proxy in front of the real apiserver (tests/faults/proxy.py): resets,
a server that dies mid-run, hangs, 429 with Retry-After, 5xx bursts, answers that are not
reviews, redirects; plus the faults a real cluster shows by itself: nothing listening, the
wrong CA, a revoked or garbage token, a caller that may not ask.

Time bounds here are sanity bounds, deliberately generous: this is not a speed test. To keep
the suite fast, skycheck's retry backoff sleeps are shortened tenfold in this module (the
retries themselves still happen), except in tests that request ``real_backoff`` because time
is what they check (Retry-After).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from skycheck import kube
from tests.faults.proxy import (
    Close,
    Hang,
    Kill,
    Raw,
    Reset,
    Respond,
    after,
    closed_port,
    first,
    once_per_request,
    status,
    when,
)
from tests.integration._scenarios import scenario
from tests.reliability._util import (
    assert_one_line_error,
    invoke,
    never_pass,
    reports,
    write_kubeconfig,
)

pytestmark = pytest.mark.cluster

FULL = ["--all-features", "-o", "json"]
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
# How long a faulty run may take beyond its --timeout before we call it hung (generous).
SLACK = 15.0


@pytest.fixture(scope="module", autouse=True)
def system_namespaces(cluster):
    for name in ("skypilot-system", "ingress-nginx"):
        cluster.create_namespace(name, exist_ok=True)


class _QuickBackoff:
    """Stands in for the ``time`` module in skycheck.kube: same clock, shorter sleeps."""

    monotonic = staticmethod(time.monotonic)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds / 10)


@pytest.fixture
def real_backoff() -> bool:
    """Request this fixture to keep skycheck's real retry sleeps."""
    return True


@pytest.fixture(autouse=True)
def _quick_backoff(request, monkeypatch):
    if "real_backoff" not in request.fixturenames:
        monkeypatch.setattr(kube, "time", _QuickBackoff)


@pytest.fixture
def admin_via(tmp_path, cluster, proxy_pki):
    """Kubeconfig for the admin token through a proxy (or any server URL)."""

    def make(url: str, *, token: str | None = None, ca: Path | None = None, **kw) -> Path:
        return write_kubeconfig(
            tmp_path / f"k{time.monotonic_ns()}.kubeconfig",
            url,
            token=token or cluster.admin_token,
            ca=ca or proxy_pki.ca_cert,
            **kw,
        )

    return make


def _decisions(outcome) -> Counter[str]:
    return Counter(c["decision"] for r in reports(outcome) for c in r["checks"])


def _timed(args: list) -> tuple[object, float]:
    started = time.monotonic()
    outcome = invoke(args)
    return outcome, time.monotonic() - started


# --- the control: the same path without faults passes ------------------------------------


def test_control_run_through_the_proxy_passes(fault_proxy, admin_via):
    """Without faults the admin passes everything: each fault below is what breaks it."""
    proxy = fault_proxy()
    outcome = invoke(["--kubeconfig", admin_via(proxy.url), *FULL])
    assert outcome.code == 0, outcome
    assert set(_decisions(outcome)) == {"allowed"}
    # Every distinct access question went through the proxy once (features that share a
    # permission, like persistentvolumeclaims, share the answer).
    reviews = [s for s in proxy.seen if s.request.path.endswith("accessreviews")]
    checks = [c for r in reports(outcome) for c in r["checks"]]
    questions = {
        (c["verb"], c["group"], c["resource"], c["subresource"], c["namespace"], c["name"])
        for c in checks
    }
    assert len(questions) < len(checks)
    assert len(reviews) == len(questions)


# --- no server ---------------------------------------------------------------------------


@pytest.mark.parametrize("identity", [[], ["--sa", "sky-sa", "-n", "default"]])
def test_server_down_before_the_run(cluster, admin_via, identity):
    kubeconfig = admin_via(f"https://127.0.0.1:{closed_port()}", ca=cluster.ca_cert)
    outcome, elapsed = _timed(["--kubeconfig", kubeconfig, *identity, *FULL, "--timeout", "10"])
    assert_one_line_error(outcome, 3, "connection refused")
    assert elapsed < 10 + SLACK


def test_every_context_down_is_unknown_not_pass(cluster, admin_via):
    kubeconfig = admin_via(f"https://127.0.0.1:{closed_port()}", ca=cluster.ca_cert, contexts=3)
    outcome = invoke(["--kubeconfig", kubeconfig, "--all-contexts", *FULL, "--timeout", "5"])
    never_pass(outcome)
    assert outcome.code == 3
    assert len(reports(outcome)) == 3
    assert set(_decisions(outcome)) == {"unknown"}


def test_one_context_down_does_not_hide_the_others(fault_proxy, tmp_path, cluster, proxy_pki):
    proxy = fault_proxy()
    kubeconfig = write_kubeconfig(
        tmp_path / "two.kubeconfig", proxy.url, token=cluster.admin_token, ca=proxy_pki.ca_cert
    )
    import yaml

    config = yaml.safe_load(kubeconfig.read_text())
    config["clusters"].append(
        {"name": "dead", "cluster": {"server": f"https://127.0.0.1:{closed_port()}"}}
    )
    config["contexts"].append({"name": "dead", "context": {"cluster": "dead", "user": "u"}})
    kubeconfig.write_text(yaml.safe_dump(config))
    outcome = invoke(["--kubeconfig", kubeconfig, "--all-contexts", *FULL, "--timeout", "10"])
    assert outcome.report["verdict"] == "unknown"
    by_context = {r["context"]: r["verdict"] for r in reports(outcome)}
    assert by_context == {"ctx-0": "pass", "dead": "unknown"}
    assert outcome.code == 3


# --- the server dies or hangs mid-run ----------------------------------------------------


# The admin itself (SelfSubjectAccessReview), and a user in system:masters asked about
# through SubjectAccessReview: both pass everything when nothing breaks.
PASSING_IDENTITIES = [[], ["--as", "someone", "--as-group", "system:masters"]]


@pytest.mark.parametrize("identity", PASSING_IDENTITIES, ids=["caller", "as-masters"])
def test_server_killed_mid_run_keeps_partial_results(fault_proxy, admin_via, identity):
    proxy = fault_proxy(after(40, Kill()))
    outcome, elapsed = _timed(
        ["--kubeconfig", admin_via(proxy.url), *identity, *FULL, "--timeout", "10"]
    )
    never_pass(outcome)
    assert outcome.code == 3
    decisions = _decisions(outcome)
    assert decisions["allowed"] >= 20, decisions  # what was answered before the kill is kept
    assert decisions["unknown"] >= 50, decisions
    assert "denied" not in decisions  # a dead server is "could not check", never "missing"
    assert reports(outcome)[0]["verdict"] == "unknown"
    assert elapsed < 10 + SLACK


def test_server_killed_at_every_stage_never_passes(fault_proxy, admin_via):
    """Cut the server at many points of a run, including after the last review."""
    total = len(_control_requests(fault_proxy, admin_via))
    # Before the first answer, after whoami, mid-run, and around the namespace lookups
    # and precondition reviews that follow the last review.
    cuts = sorted({0, 1, total // 2, total - 4, total - 3, total - 1})
    results = {}
    for cut in cuts:
        proxy = fault_proxy(after(cut, Kill()))
        outcome = invoke(["--kubeconfig", admin_via(proxy.url), *FULL, "--timeout", "2"])
        never_pass(outcome)
        results[cut] = outcome.code
        proxy.stop()
    assert set(results.values()) <= {1, 3}, results


def _control_requests(fault_proxy, admin_via) -> list:
    proxy = fault_proxy()
    assert invoke(["--kubeconfig", admin_via(proxy.url), *FULL]).code == 0
    proxy.stop()
    return proxy.seen


def test_hung_server_ends_within_the_timeout(fault_proxy, admin_via):
    proxy = fault_proxy(lambda r: Hang())
    outcome, elapsed = _timed(
        ["--kubeconfig", admin_via(proxy.url), *FULL, "--timeout", "3", "--request-timeout", "1"]
    )
    line = assert_one_line_error(outcome, 3)
    assert "timed out" in line or "deadline" in line, line
    assert elapsed < 3 + SLACK


def test_server_hanging_mid_run_keeps_partial_results(fault_proxy, admin_via):
    proxy = fault_proxy(after(30, Hang()))
    outcome, elapsed = _timed(
        ["--kubeconfig", admin_via(proxy.url), *FULL, "--timeout", "4", "--request-timeout", "1"]
    )
    never_pass(outcome)
    assert outcome.code == 3
    decisions = _decisions(outcome)
    assert decisions["allowed"] >= 10 and decisions["unknown"] >= 50, decisions
    assert elapsed < 4 + SLACK


# --- throttling and transient errors -------------------------------------------------------


def test_429_retry_after_is_honoured_then_the_answer_is_right(fault_proxy, admin_via, real_backoff):
    proxy = fault_proxy(first(1, status(429, retry_after=2)))
    outcome = invoke(["--kubeconfig", admin_via(proxy.url), *FULL])
    assert outcome.code == 0, outcome
    assert set(_decisions(outcome)) == {"allowed"}
    seen = proxy.seen
    throttled = seen[0]
    assert throttled.status == 429
    retry = next(s for s in seen[1:] if s.request.fingerprint == throttled.request.fingerprint)
    # Our own backoff would have waited ~0.2 s; Retry-After said 2 s.
    assert retry.started - throttled.ended >= 1.9


@pytest.mark.parametrize(
    "fault",
    [
        status(429),
        status(429, retry_after=0.1),
        status(500),
        status(502),
        status(503),
        status(504),
        Reset(),
        Close(),
    ],
    ids=["429", "429-retry-after", "500", "502", "503", "504", "reset", "close"],
)
def test_one_transient_failure_per_request_is_retried(fault_proxy, admin_via, fault):
    proxy = fault_proxy(once_per_request(fault))
    outcome = invoke(["--kubeconfig", admin_via(proxy.url), *FULL])
    assert outcome.code == 0, outcome
    assert set(_decisions(outcome)) == {"allowed"}
    # Every distinct request failed once (a few reviews repeat across features).
    assert sum(1 for s in proxy.seen if s.action != "Forward") >= 90


@pytest.mark.parametrize(
    "fault",
    [status(503), status(429, retry_after=1), status(429, retry_after=30), Reset()],
    ids=["503", "429-retry-after-1", "429-retry-after-30", "reset"],
)
def test_persistent_review_failures_are_unknown(fault_proxy, admin_via, fault):
    proxy = fault_proxy(when(lambda r: r.path == SSAR_PATH, fault))
    outcome, elapsed = _timed(["--kubeconfig", admin_via(proxy.url), *FULL, "--timeout", "3"])
    never_pass(outcome)
    assert outcome.code == 3
    assert set(_decisions(outcome)) == {"unknown"}
    assert elapsed < 3 + SLACK


def test_persistent_503_everywhere_is_one_line(fault_proxy, admin_via):
    proxy = fault_proxy(lambda r: status(503))
    outcome = invoke(["--kubeconfig", admin_via(proxy.url), *FULL, "--timeout", "6"])
    assert_one_line_error(outcome, 3, "503")


# --- answers that are not answers -----------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Respond(201, b"<html>captive portal</html>"),
        Respond(201, b'{"kind": "Status"}'),
        Respond(200, b'{"kind": "SelfSubjectAccessReview", "status": {"allowed": true}}'),
        Raw(b'HTTP/1.1 201 Created\r\nContent-Length: 500\r\n\r\n{"status": {'),
        Raw(b"\x00\xff garbage, not HTTP \r\n\r\n"),
    ],
    ids=["html-201", "status-201", "allowed-but-200", "truncated", "garbage"],
)
def test_malformed_review_answers_are_unknown(fault_proxy, admin_via, fault):
    proxy = fault_proxy(when(lambda r: r.path == SSAR_PATH, fault))
    outcome = invoke(["--kubeconfig", admin_via(proxy.url), *FULL, "--timeout", "3"])
    never_pass(outcome)
    assert outcome.code == 3
    assert set(_decisions(outcome)) == {"unknown"}


def test_redirect_is_not_followed_and_the_token_stays_home(fault_proxy, admin_via):
    elsewhere = fault_proxy()
    location = f"{elsewhere.url}{SSAR_PATH}"
    proxy = fault_proxy(lambda r: Respond(307, b"", (("Location", location),)))
    outcome = invoke(["--kubeconfig", admin_via(proxy.url), *FULL, "--timeout", "6"])
    assert_one_line_error(outcome, 3)
    assert not [s for s in elsewhere.seen if s.request.header("Authorization")]


def test_unknown_namespace_existence_never_passes(
    cluster, fault_proxy, ns, sa_kubeconfig, proxy_pki
):
    """GETs of namespaces fail: a missing skypilot-system cannot be ruled out.

    The docs' service account holds every object-store permission but may not create
    namespaces, so only the namespace lookup stands between it and a pass.
    """
    import yaml

    cluster.apply(scenario("docs", ns))
    cluster.apply(NAMESPACE_READER.format(ns=ns))
    sa_config = sa_kubeconfig("sky-sa")
    token = yaml.safe_load(sa_config.read_text())["users"][0]["user"]["token"]
    direct = ["--kubeconfig", sa_config, "-n", ns, "-f", "object-store-mounting", "-o", "json"]
    assert invoke(direct).code == 0  # the control: no fault, it passes

    proxy = fault_proxy(
        when(lambda r: r.method == "GET" and r.path.startswith("/api/v1/namespaces/"), status(503))
    )
    kubeconfig = write_kubeconfig(
        sa_config.with_suffix(".proxy"), proxy.url, token=token, ca=proxy_pki.ca_cert
    )
    outcome = invoke([*direct[:1], kubeconfig, *direct[2:], "--timeout", "10"])
    never_pass(outcome)
    precondition = [
        c for c in reports(outcome)[0]["checks"] if ".namespace-skypilot-system" in c["id"]
    ]
    assert precondition and precondition[0]["decision"] != "allowed"
    cluster.delete(NAMESPACE_READER.format(ns=ns))


NAMESPACE_READER = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: "ns-reader-{ns}"}}
rules: [{{apiGroups: [""], resources: [namespaces], verbs: [get]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: "ns-reader-{ns}"}}
subjects: [{{kind: ServiceAccount, name: sky-sa, namespace: "{ns}"}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "ns-reader-{ns}"}}
"""


# --- TLS and credentials -------------------------------------------------------------------


def test_wrong_ca_is_one_tls_line(cluster, admin_via, proxy_pki):
    kubeconfig = admin_via(cluster.server, ca=proxy_pki.ca_cert)  # not the apiserver's CA
    outcome = invoke(["--kubeconfig", kubeconfig, *FULL, "--timeout", "20"])
    assert_one_line_error(outcome, 3, "TLS", "certificate")


def test_certificate_errors_are_not_retried(fault_proxy, cluster, admin_via):
    proxy = fault_proxy()
    kubeconfig = admin_via(proxy.url, ca=cluster.ca_cert)  # the proxy's cert: not trusted
    assert_one_line_error(invoke(["--kubeconfig", kubeconfig, *FULL]), 3, "TLS", "certificate")
    assert proxy.connections == 1  # one handshake: verification failures are final


def test_server_name_mismatch_is_one_tls_line(cluster, admin_via):
    kubeconfig = admin_via(cluster.server, ca=cluster.ca_cert)
    import yaml

    config = yaml.safe_load(kubeconfig.read_text())
    config["clusters"][0]["cluster"]["tls-server-name"] = "evil.example"
    kubeconfig.write_text(yaml.safe_dump(config))
    assert_one_line_error(invoke(["--kubeconfig", kubeconfig, *FULL]), 3, "TLS")


def test_https_to_a_plain_http_server_is_one_tls_line(fault_proxy, admin_via):
    proxy = fault_proxy(tls=False)
    url = proxy.url.replace("http://", "https://")
    outcome = invoke(["--kubeconfig", admin_via(url), *FULL, "--timeout", "10"])
    assert_one_line_error(outcome, 3, "TLS")


def test_plain_http_to_the_https_server_is_one_line(cluster, admin_via):
    kubeconfig = admin_via(cluster.server.replace("https://", "http://"), ca=cluster.ca_cert)
    assert_one_line_error(invoke(["--kubeconfig", kubeconfig, *FULL]), 3)


@pytest.mark.parametrize("identity", [[], ["--sa", "sky-sa", "-n", "default"]])
def test_garbage_token_is_one_401_line(cluster, admin_via, identity):
    kubeconfig = admin_via(cluster.server, token="not-a-real-token-0123456789", ca=cluster.ca_cert)
    outcome = invoke(["--kubeconfig", kubeconfig, *identity, *FULL])
    assert_one_line_error(outcome, 3, "401")


def test_token_of_a_deleted_service_account_is_one_401_line(cluster, ns, sa_kubeconfig):
    # Never used before the delete: the apiserver caches successful token checks (~10 s).
    kubeconfig = sa_kubeconfig("short-lived")
    cluster.request("DELETE", f"/api/v1/namespaces/{ns}/serviceaccounts/short-lived")
    deadline = time.monotonic() + 30
    while cluster.get(f"/api/v1/namespaces/{ns}/serviceaccounts/short-lived") is not None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    outcome = invoke(["--kubeconfig", kubeconfig, "-n", ns, "-o", "json"])
    assert_one_line_error(outcome, 3, "401")


def test_caller_not_allowed_to_ask_names_the_missing_permissions(cluster, ns, user_kubeconfig):
    outcome = invoke(["--kubeconfig", user_kubeconfig("bob"), "--sa", "sky-sa", "-n", ns, *FULL])
    line = assert_one_line_error(outcome, 3, "subjectaccessreviews", "impersonate")
    assert "localsubjectaccessreviews" in line

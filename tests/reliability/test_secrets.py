"""Secrets never leak: not to stdout, stderr, report files, error lines or tracebacks.

One kubeconfig carries every kind of credential a kubeconfig can hold, each a canary: a bearer
token the server rejects, a basic-auth password, client key data, OIDC tokens, an exec
plugin's environment, next to a context that works (a real service-account token, itself a
secret). skycheck runs over all of it in every output format, with ``--debug`` and
``--explain``, on error paths (each broken context alone) and on crash paths (an internal
error whose message carries the secrets, in the main thread and in a worker thread, before
and after the kubeconfig is parsed). Then no canary, nor the real token, may appear anywhere.

Tracebacks (``--debug`` only) never show local variables: a crash raised from a frame holding
an unregistered secret in a local must not print it.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from skycheck.review import live
from tests.integration._scenarios import scenario
from tests.reliability._util import invoke

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
CANARY_TOKEN = "canary-token-5f2c9e0d7b1a4c3e8f6d"
CANARY_PASSWORD = "canary-password-a8b7c6d5e4f3"
# Key material as it sits in a PEM body (base64 of the DER bytes), inside client-key-data.
CANARY_KEY_MATERIAL = "canary-key-material-0f1e2d3c4b5a"
CANARY_KEY_BODY = base64.b64encode(CANARY_KEY_MATERIAL.encode() * 3).decode()
CANARY_KEY = f"-----BEGIN PRIVATE KEY-----\n{CANARY_KEY_BODY}\n-----END PRIVATE KEY-----\n"
CANARY_KEY_DATA = base64.b64encode(CANARY_KEY.encode()).decode()
CANARY_ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.canary-id-token-payload-77aa.canary-signature-88bb"
CANARY_REFRESH = "canary-refresh-token-99cc11dd"
CANARY_CLIENT_SECRET = "canary-client-secret-22ee33ff"
OUTPUTS = ("table", "json", "yaml", "junit", "sarif", "markdown", "github")


@pytest.fixture(scope="module", autouse=True)
def system_namespaces(cluster):
    for name in ("skypilot-system", "ingress-nginx"):
        cluster.create_namespace(name, exist_ok=True)


@pytest.fixture
def canary_kubeconfig(cluster, ns, sa_kubeconfig, tmp_path) -> tuple[Path, list[str]]:
    """A kubeconfig with one working context and one broken context per credential kind.

    Returns the path and every secret value in it (the client key also decoded, as the
    client decodes it); leaks are checked for each, and a crash message carries them all.
    """
    cluster.apply(scenario("docs", ns))
    real = yaml.safe_load(sa_kubeconfig("sky-sa").read_text())
    real_token = real["users"][0]["user"]["token"]
    ca = real["clusters"][0]["cluster"]["certificate-authority-data"]
    users = {
        "live": {"token": real_token},
        "bad-token": {"token": CANARY_TOKEN},
        "basic": {"username": "admin", "password": CANARY_PASSWORD},
        "cert": {
            "client-certificate-data": base64.b64encode(b"not a certificate").decode(),
            "client-key-data": CANARY_KEY_DATA,
        },
        "oidc": {
            "auth-provider": {
                "name": "oidc",
                "config": {
                    "client-id": "skycheck",
                    "client-secret": CANARY_CLIENT_SECRET,
                    "id-token": CANARY_ID_TOKEN,
                    "refresh-token": CANARY_REFRESH,
                    "idp-issuer-url": "https://127.0.0.1:9",
                },
            }
        },
    }
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "live",
        "clusters": [
            {"name": "c", "cluster": {"server": cluster.server, "certificate-authority-data": ca}}
        ],
        "users": [{"name": name, "user": body} for name, body in users.items()],
        "contexts": [
            {"name": name, "context": {"cluster": "c", "user": name, "namespace": ns}}
            for name in users
        ],
    }
    path = tmp_path / "canary.kubeconfig"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    secrets = [
        real_token,
        CANARY_TOKEN,
        CANARY_PASSWORD,
        CANARY_KEY_DATA,
        CANARY_KEY,
        CANARY_KEY_BODY,
        CANARY_ID_TOKEN,
        CANARY_REFRESH,
        CANARY_CLIENT_SECRET,
    ]
    return path, secrets


def assert_no_leak(secrets: list[str], *texts: str) -> None:
    for text in texts:
        assert CANARY_KEY_MATERIAL not in text  # the raw key, were anything to decode it twice
        for secret in secrets:
            # Also a distinctive slice: a secret cut or wrapped on the way must not slip by.
            for probe in {secret, secret[:16], secret[-16:]}:
                assert probe not in text, f"secret leaked: ...{probe[-6:]} in {text[:2000]!r}"


def _all_text(outcome: Any, *files: Path) -> list[str]:
    return [outcome.out, outcome.err, *(f.read_text() for f in files if f.exists())]


@pytest.mark.parametrize("fmt", OUTPUTS)
def test_every_output_format_over_every_credential_kind(canary_kubeconfig, tmp_path, fmt):
    kubeconfig, secrets = canary_kubeconfig
    report = tmp_path / f"report.{fmt}"
    fix = tmp_path / "fix.yaml"
    base = ["--kubeconfig", kubeconfig, "--all-contexts", "--all-features", "--timeout", "20"]
    to_file = invoke([*base, "-o", fmt, "--output-file", report, "--fix", fix, "--debug"])
    to_stdout = invoke([*base, "-o", fmt, "--explain"])
    for outcome in (to_file, to_stdout):
        assert outcome.code in (1, 3), outcome  # the live context fails, the others unknown
        assert "Traceback" not in outcome.err
    assert report.read_text().strip()
    fixes = list(tmp_path.glob("fix*.yaml"))
    assert fixes  # the working context is missing permissions: a fix was written
    assert_no_leak(secrets, *_all_text(to_file, report, *fixes), *_all_text(to_stdout))


@pytest.mark.parametrize("context", ["bad-token", "basic", "cert", "oidc"])
def test_each_broken_credential_alone_is_one_clean_line(canary_kubeconfig, context):
    kubeconfig, secrets = canary_kubeconfig
    for extra in ([], ["--debug"], ["--sa", "sky-sa"]):
        outcome = invoke(["--kubeconfig", kubeconfig, "--context", context, *extra])
        assert outcome.code in (2, 3), outcome
        assert len(outcome.err.strip().splitlines()) == 1, outcome.err
        assert "Traceback" not in outcome.err
        assert_no_leak(secrets, outcome.out, outcome.err)


def test_broken_yaml_around_a_token_does_not_echo_it(tmp_path):
    secrets = [CANARY_TOKEN]
    broken = {
        "tab-after-token": f"users:\n- name: u\n  user:\n    token: {CANARY_TOKEN}\t: x\n",
        "unclosed-quote": f'users:\n- name: u\n  user: {{token: "{CANARY_TOKEN}\n',
        "token-as-key": f"users:\n- {CANARY_TOKEN}: [\n",
        "duplicate-token": f"users:\n- name: u\n  user:\n    token: {CANARY_TOKEN}\n"
        f"    token: {CANARY_TOKEN}\n",
        "token-as-tag": f"users: !{CANARY_TOKEN} []\n",
        "token-as-anchor": f"users: *{CANARY_TOKEN}\n",
    }
    for name, text in broken.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        outcome = invoke(["--kubeconfig", path, "--debug"])
        assert outcome.code == 2, (name, outcome)
        # A tag or alias name is part of the syntax, not a value; the rest must not echo.
        if name not in ("token-as-tag", "token-as-anchor"):
            assert_no_leak(secrets, outcome.out, outcome.err)


def _crash_with(message_parts: list[str]):
    def boom(self, subject, requirements):
        # Built at run time so the secret is in no source line a traceback could show.
        hidden_local = "".join(["local-canary-", "3d4e5f60718293a4"])  # noqa: F841
        raise RuntimeError("review failed: " + " | ".join(message_parts))

    return boom


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
@pytest.mark.parametrize(
    "contexts", [["--context", "live"], ["--all-contexts"]], ids=["one", "all"]
)
def test_internal_error_carrying_secrets_is_redacted(
    canary_kubeconfig, monkeypatch, debug, contexts
):
    kubeconfig, secrets = canary_kubeconfig
    monkeypatch.setattr(live.LiveReviewer, "review", _crash_with(secrets))
    outcome = invoke(["--kubeconfig", kubeconfig, *contexts, *(["--debug"] if debug else [])])
    assert outcome.code == 3, outcome
    assert "internal error: RuntimeError" in outcome.err
    assert ("Traceback" in outcome.err) is debug  # a traceback only with --debug
    assert "local-canary-3d4e5f60718293a4" not in outcome.err  # no locals in tracebacks
    assert_no_leak(secrets, outcome.out, outcome.err)


def test_crash_while_validating_the_kubeconfig_is_redacted(canary_kubeconfig, monkeypatch):
    """The crash happens before the kubeconfig is validated: secrets must be known already."""
    from skycheck import kube

    kubeconfig, secrets = canary_kubeconfig

    def boom(data: Any, source: str) -> Any:
        raise ValueError(f"cannot validate {data!r}")

    monkeypatch.setattr(kube, "_validate", boom)
    outcome = invoke(["--kubeconfig", kubeconfig, "--debug"])
    assert outcome.code == 3 and "Traceback" in outcome.err
    assert_no_leak(secrets, outcome.out, outcome.err)


CRASH_SCRIPT = """
import sys
import skycheck.review.live as live

secrets = sys.argv[1].split(",")

def boom(self, subject, requirements):
    hidden_local = "".join(["local-canary-", "3d4e5f60718293a4"])
    raise RuntimeError("boom " + " ".join(secrets))

live.LiveReviewer.review = boom
from skycheck.cli import main
main(sys.argv[2:])
"""


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_crash_in_a_real_process_is_redacted(canary_kubeconfig, debug):
    kubeconfig, secrets = canary_kubeconfig
    # HOME is an empty directory (tests/conftest.py): no SkyPilot config.
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "SKYPILOT_CONFIG")}
    args = ["--kubeconfig", str(kubeconfig), "--all-contexts", *(["--debug"] if debug else [])]
    result = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, ",".join(secrets), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
    )
    assert result.returncode == 3, result
    assert ("Traceback" in result.stderr) is debug
    assert "local-canary-3d4e5f60718293a4" not in result.stderr
    assert_no_leak(secrets, result.stdout, result.stderr)

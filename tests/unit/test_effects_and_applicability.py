"""Effects per SkyPilot version, features that do not concern the identity, and
bind/escalate alternatives, decided offline from manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skycheck.applicability import IdentityRole, for_flags, not_applicable
from skycheck.catalogue import bind, default_version, load_catalogue, proven_versions
from skycheck.cli import run
from skycheck.models import Effect, Profile
from tests._catalogue import SKYPILOT_CLUSTER_RULES

DOCS_SA = Path(__file__).resolve().parents[1] / "manifests" / "create-sky-sa.yaml"
RBAC = "rbac.authorization.k8s.io"


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = run([*args, "-o", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_documented_checks_are_shown_but_gate_only_under_the_docs_profile(tmp_path, capsys):
    # The docs' Role without secrets: SkyPilot never asks for secrets, the docs list them.
    text = DOCS_SA.read_text()
    assert '"secrets"' in text or "secrets" in text
    manifest = tmp_path / "no-secrets.yaml"
    manifest.write_text(text.replace("secrets", "configmaps"))
    args = ("--manifests", str(manifest), "--sa", "sky-sa", "-n", "default")
    code, doc = _json(capsys, *args)
    secrets = [c for c in doc["checks"] if c["resource"] == "secrets"]
    assert secrets and {c["effect"] for c in secrets} == {"documented"}
    assert {c["decision"] for c in secrets} == {"denied"}
    assert code == 0 and doc["verdict"] == "pass" and doc["profile"] == "skypilot"
    assert doc["fix"] is None  # nothing SkyPilot needs is missing
    code, doc = _json(capsys, *args, "--profile", "docs")
    assert code == 1 and doc["verdict"] == "fail"
    assert '"secrets"' in doc["fix"]


def test_report_names_the_version_and_flag_must_be_a_version(capsys):
    args = ("--manifests", str(DOCS_SA), "--sa", "sky-sa", "-n", "default")
    _, doc = _json(capsys, *args)
    # With no flag and no SkyPilot installed: the newest proven release, never a nightly
    # (a nightly can need less than the release its user runs).
    newest = default_version()
    assert doc["skypilot"] == {
        "version": newest,
        "provenBy": newest,
        "proven": True,
        "source": "default",
    }
    assert "dev" not in default_version()
    oldest = proven_versions()[0].version
    _, doc = _json(capsys, *args, "--skypilot-version", oldest)
    assert doc["skypilot"] == {
        "version": oldest,
        "provenBy": oldest,
        "proven": True,
        "source": "flag",
    }
    assert run([*args, "--skypilot-version", "not-a-version"]) == 2
    assert "not a SkyPilot version" in capsys.readouterr().err


def test_every_rule_has_an_effect_for_every_proven_version_it_applies_to():
    catalogue = load_catalogue()
    for version in proven_versions():
        reqs = bind(catalogue, "ns", catalogue.names, catalogue.names, version=version.version)
        assert reqs and all(isinstance(r.effect, Effect) for r in reqs)
        assert all(r.lost for r in reqs if r.effect is Effect.DEGRADES)
    assert Profile.SKYPILOT.gates(Effect.FATAL)
    assert not Profile.SKYPILOT.gates(Effect.DOCUMENTED)
    assert not Profile.SKYPILOT.gates(Effect.DEGRADES)
    assert Profile.DOCS.gates(Effect.FATAL) and Profile.DOCS.gates(Effect.DOCUMENTED)
    assert not Profile.DOCS.gates(Effect.DEGRADES)


@pytest.mark.parametrize(
    ("role", "bootstraps"),
    [
        (for_flags(None, None), True),  # the caller, SkyPilot's default remote_identity
        (for_flags("sky-sa", None), False),  # the docs' account is its own remote_identity
        (for_flags("team:sky-sa", None), False),
        (for_flags("ci", "SERVICE_ACCOUNT"), True),
        (for_flags("ci", "LOCAL_CREDENTIALS"), True),
        (for_flags("ci", "service_account"), False),  # SkyPilot's keywords are case-sensitive
        (for_flags("ci", "NO_UPLOAD"), True),
        (for_flags("skypilot-service-account", None), True),  # SkyPilot's own name
        (IdentityRole(False, "SERVICE_ACCOUNT"), False),  # the pods' own account
    ],
)
def test_rbac_bootstrap_concerns_only_a_launcher_on_the_default_path(role, bootstraps):
    skipped = dict(not_applicable(role))
    assert ("rbac-bootstrap" not in skipped) is bootstraps
    if not bootstraps:
        assert skipped["rbac-bootstrap"]


def test_not_applicable_feature_is_never_checked_never_gates_never_fixed(capsys):
    code, doc = _json(
        capsys, "--manifests", str(DOCS_SA), "--sa", "sky-sa", "-n", "default", "--all-features"
    )
    status = {f["name"]: f for f in doc["features"]}
    assert status["rbac-bootstrap"]["status"] == "not-applicable"
    assert not [c for c in doc["checks"] if c["feature"] == "rbac-bootstrap"]
    for word in ("clusterroles", "clusterrolebindings", "escalate", "bind"):
        assert f'"{word}"' not in (doc["fix"] or ""), word
    # The same account as a launcher on SkyPilot's default path: bootstrap applies.
    code, doc = _json(
        capsys,
        "--manifests",
        str(DOCS_SA),
        "--sa",
        "sky-sa",
        "-n",
        "default",
        "-f",
        "rbac-bootstrap",
        "--remote-identity",
        "SERVICE_ACCOUNT",
    )
    assert code == 1
    assert {f["name"]: f["status"] for f in doc["features"]}["rbac-bootstrap"] == "fail"


def _grant(tmp_path: Path, rules: list[dict]) -> Path:
    objects = [
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "launcher"},
            "rules": rules,
        },
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "launcher"},
            "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "default"}],
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "launcher"},
        },
    ]
    path = tmp_path / "grant.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    return path


@pytest.mark.parametrize("short", [None, "ingressclasses"])
def test_bind_is_granted_by_holding_what_the_role_grants(tmp_path, capsys, short):
    rules = [dict(r) for r in SKYPILOT_CLUSTER_RULES]
    if short:
        rules = [r for r in rules if short not in r["resources"]]
    code, doc = _json(
        capsys,
        "--manifests",
        str(_grant(tmp_path, rules)),
        "--sa",
        "ci",
        "-n",
        "default",
        "-f",
        "rbac-bootstrap",
        "--remote-identity",
        "SERVICE_ACCOUNT",
    )
    assert code == 1  # the namespaced roles are missing either way
    checks = {c["id"]: c for c in doc["checks"]}
    bind_check = checks[
        "rbac-bootstrap.clusterroles-bind.bind.skypilot-service-account-cluster-role"
    ]
    escalate = checks["rbac-bootstrap.clusterroles-escalate.escalate"]
    if short is None:
        assert bind_check["decision"] == escalate["decision"] == "allowed"
        assert "escalation check accepts instead" in bind_check["reason"]
        assert '"skypilot-service-account-cluster-role"' not in (doc["fix"] or "")
    else:
        assert bind_check["decision"] == escalate["decision"] == "denied"
        assert "nor does the identity hold" in bind_check["reason"]
        assert '"bind"' in doc["fix"] and '"skypilot-service-account-cluster-role"' in doc["fix"]

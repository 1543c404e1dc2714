"""The CLI without a cluster: version, help, rules, manifest, usage errors, offline exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from skycheck import __version__
from skycheck.cli import run
from skycheck.models import Decision
from skycheck.review.live import decide

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS_SA = ROOT / "tests" / "manifests" / "create-sky-sa.yaml"


def test_version_and_help(capsys):
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"skycheck {__version__}"
    assert run(["-h"]) == 0
    assert "--sa NAME" in capsys.readouterr().out


def test_help_does_not_import_kubernetes():
    code = (
        "import sys; from skycheck.cli import run; run(['--help']); "
        "print('kubernetes' in sys.modules, 'rich.table' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[-2] == "False"


def test_offline_path_does_not_import_kubernetes(tmp_path):
    code = (
        "import sys; from skycheck.cli import run; "
        f"run(['--manifests', {str(DOCS_SA)!r}, '--sa', 'sky-sa', '-n', 'default', "
        f"'-o', 'json', '--output-file', {str(tmp_path / 'r.json')!r}]); "
        "print('kubernetes' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[-1] == "False"


def test_rules_lists_the_catalogue_as_table_and_json(capsys):
    assert run(["rules"]) == 0
    table = capsys.readouterr().out
    assert "core.pods-exec" in table and "object-store-mounting" in table
    assert run(["rules", "-o", "json", "-f", "core"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in doc["features"]] == ["core"]
    assert run(["rules", "-f", "nope"]) == 2


def test_manifest_command_writes_a_least_privilege_service_account(capsys):
    assert run(["manifest", "--sa", "sky-sa", "-n", "team", "-f", "object-store-mounting"]) == 0
    text = capsys.readouterr().out
    assert "kind: ServiceAccount" in text and 'name: "skypilot-system"' in text
    assert '"*"' not in text and 'namespace: "team"' in text


@pytest.mark.parametrize("version", ["0.12.3.post1", "0.14.1", "nightly"])
@pytest.mark.parametrize(
    "features",
    [[], ["-f", "show-gpus"], ["-f", "volumes", "-f", "hostpath-volumes"], ["--all-features"]],
)
def test_an_account_holding_the_manifest_has_no_excess(tmp_path, capsys, version, features):
    """`skycheck manifest` is least privilege: an account holding exactly it passes, and
    the excess audit finds nothing beyond SkyPilot's need, for every proven version."""
    made = tmp_path / "sa.yaml"
    flags = ["--sa", "sky-sa", "-n", "team", "--skypilot-version", version, *features]
    assert run(["manifest", *flags, "--output-file", str(made)]) == 0
    capsys.readouterr()
    namespaces = tmp_path / "ns.yaml"
    namespaces.write_text(
        "".join(
            f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {n}}}\n"
            for n in ("team", "skypilot-system", "ingress-nginx")
        )
    )
    argv = ["--manifests", str(made), "--manifests", str(namespaces), *flags, "--excess"]
    assert run([*argv, "-o", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "pass"
    assert report["excessSummary"]["state"] == "complete"
    assert report["excess"] == []


def test_manifest_profile_docs_adds_the_documented_verbs(capsys):
    assert run(["manifest", "--sa", "sky-sa"]) == 0
    need = capsys.readouterr().out
    assert run(["manifest", "--sa", "sky-sa", "--profile", "docs"]) == 0
    docs = capsys.readouterr().out
    assert '"secrets"' not in need and '"secrets"' in docs
    assert run(["manifest", "--sa", "sky-sa", "--profile", "nope"]) == 2


def test_offline_docs_manifest_passes_core_and_reports_optional_gaps(capsys):
    code = run(["--manifests", str(DOCS_SA), "--sa", "sky-sa", "-n", "default", "-o", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["mode"] == "offline" and doc["method"] == "Offline"
    features = {f["name"]: f for f in doc["features"]}
    assert features["core"]["status"] == "pass" and features["core"]["required"]
    # The docs' account is its own remote_identity: SkyPilot bootstraps nothing for it.
    assert features["rbac-bootstrap"]["status"] == "not-applicable"
    assert "remote_identity is sky-sa" in features["rbac-bootstrap"]["reason"]
    assert not [c for c in doc["checks"] if c["feature"] == "rbac-bootstrap"]
    assert features["volumes"]["status"] == "fail" and not features["volumes"]["required"]
    assert (
        run(
            [
                "--manifests",
                str(DOCS_SA),
                "--sa",
                "sky-sa",
                "-n",
                "default",
                "--fail-on",
                "optional",
                "-o",
                "json",
            ]
        )
        == 1
    )
    capsys.readouterr()


@pytest.mark.parametrize(
    "args",
    [
        ["--manifests", str(DOCS_SA)],  # offline needs an identity
        ["--manifests", str(DOCS_SA), "--sa", "x", "--context", "c"],
        ["--as-group", "g"],
        ["--sa", "Not_Valid", "--manifests", str(DOCS_SA)],
        ["--sa", "x", "-n", "Bad NS", "--manifests", str(DOCS_SA)],
        ["--manifests", "/no/such/file.yaml", "--sa", "x"],
        ["--max-inflight", "0", "--manifests", str(DOCS_SA), "--sa", "x"],
        ["--kubeconfig", "/no/such/kubeconfig"],
    ],
)
def test_usage_and_input_errors_exit_2_with_one_line(args, capsys):
    assert run(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("skycheck: error:") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_malformed_manifest_names_file_and_document(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: Role\napiVersion: rbac.authorization.k8s.io/v1\n"
        "metadata: {name: r, namespace: default}\nrules: []\n---\nkind: [\n"
    )
    assert run(["--manifests", str(bad), "--sa", "x"]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "document 1" in err


@pytest.mark.parametrize(
    ("status", "decision"),
    [
        ({"allowed": True}, Decision.ALLOWED),
        ({"allowed": False}, Decision.DENIED),
        ({"allowed": False, "denied": True, "reason": "webhook says no"}, Decision.DENIED),
        ({"allowed": False, "evaluationError": "role not found"}, Decision.UNKNOWN),
        ({"allowed": True, "evaluationError": "one binding failed"}, Decision.ALLOWED),
        ({}, Decision.DENIED),
    ],
)
def test_access_review_status_mapping(status, decision):
    got, reason, error, denied = decide(status)
    assert got is decision
    assert denied == bool(status.get("denied"))
    assert error == status.get("evaluationError", "")
    if decision is Decision.UNKNOWN:
        assert "role not found" in reason


@pytest.mark.parametrize(
    ("fault", "code", "line"),
    [
        (KeyboardInterrupt(), 130, "skycheck: error: interrupted"),
        (
            RuntimeError("boom\nsecond line"),
            3,
            "skycheck: error: internal error: RuntimeError: boom",
        ),
    ],
    ids=["interrupted", "internal-error"],
)
def test_a_check_that_stops_says_why_in_one_line(monkeypatch, capsys, fault, code, line):
    from skycheck.review.offline import OfflineReviewer

    def stop(*args, **kwargs):
        raise fault

    monkeypatch.setattr(OfflineReviewer, "review", stop)
    assert run(["--manifests", str(DOCS_SA), "--sa", "sky-sa", "-n", "default"]) == code
    captured = capsys.readouterr()
    assert captured.err == line + "\n" and captured.out == ""


def test_watch_refuses_what_it_cannot_honour(capsys):
    from skycheck import cli

    for args, message in (
        (["--interval", "0.5", "--sa", "x"], "--interval must be at least 1 second"),
        (["--port", "70000", "--sa", "x"], "--port must be between 0 and 65535"),
        (["-o", "json", "--sa", "x"], "it takes no -o, --output-file or --fix"),
        (["--sa", "x", "stray"], "unexpected argument 'stray'"),
    ):
        assert cli.run(["watch", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_prometheus_client_stays_off_other_outputs():
    import subprocess
    import sys

    code = (
        "import sys; from skycheck.cli import run\n"
        "run(['--manifests', 'tests/manifests/create-sky-sa.yaml', '--sa', 'sky-sa',"
        " '-n', 'default', '-o', 'json'])\n"
        "print('prometheus_client' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip().splitlines()[-1] == "False"

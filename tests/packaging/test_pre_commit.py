"""The repository's .pre-commit-hooks.yaml, installed and run by the real pre-commit tool.

A temporary repository holds RBAC manifests and a .pre-commit-config.yaml naming this
checkout (a committed snapshot of it) at a rev, exactly as a user's would name the
published repository: pre-commit clones it, installs skycheck into its own environment
and runs the hook.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.packaging._checkout import ROOT, git, snapshot

pytestmark = pytest.mark.packaging

GOOD = (ROOT / "tests" / "manifests" / "create-sky-sa.yaml").read_text()
# The docs' short skypilot-system snippet, which grants nothing (scripts/demo.py).
BROKEN = GOOD.replace(
    '  - apiGroups: [ "apps" ]\n    resources: [ "daemonsets" ]\n    verbs: [ "*" ]\n',
    '  - apiGroups: [ "*" ]\n    resources: [ "apps" ]\n    verbs: [ "daemonsets" ]\n',
)


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, Path]]:
    """(snapshot repository, its rev, PRE_COMMIT_HOME shared so the hook installs once)."""
    base = tmp_path_factory.mktemp("pre-commit")
    source = base / "skycheck"
    rev = snapshot(source)
    yield source, rev, base / "home"


def _project(path: Path, files: dict[str, str], config: dict[str, object]) -> Path:
    path.mkdir()
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    (path / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    return path


def _config(source: Path, rev: str, **hook: object) -> dict[str, object]:
    return {"repos": [{"repo": str(source), "rev": rev, "hooks": [{"id": "skycheck", **hook}]}]}


def _pre_commit(project: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_hook_definition_checks_the_whole_manifest_path():
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "skycheck"
    assert hook["pass_filenames"] is False
    assert hook["entry"] == "skycheck"
    assert hook["args"][:2] == ["--manifests", "deploy/rbac"]


def test_default_args_pass_on_the_docs_manifest(hook_repo, tmp_path):
    source, rev, home = hook_repo
    project = _project(
        tmp_path / "project", {"deploy/rbac/create-sky-sa.yaml": GOOD}, _config(source, rev)
    )
    result = _pre_commit(project, home, "--all-files")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "skycheck (SkyPilot RBAC, offline)" in result.stdout
    assert "Passed" in result.stdout
    # A commit that touches no manifest does not run the check.
    (project / "README.txt").write_text("notes\n")
    git(project, "add", "README.txt")
    skipped = _pre_commit(project, home, "--files", "README.txt")
    assert skipped.returncode == 0, skipped.stdout
    assert "Skipped" in skipped.stdout


def test_args_override_and_a_missing_permission_fails(hook_repo, tmp_path):
    source, rev, home = hook_repo
    args = ["--manifests", "k8s", "--sa", "sky-sa", "-n", "default", "-f", "object-store-mounting"]
    project = _project(
        tmp_path / "project", {"k8s/sky-sa.yaml": BROKEN}, _config(source, rev, args=args)
    )
    result = _pre_commit(project, home, "--all-files")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Failed" in result.stdout
    assert "- exit code: 1" in result.stdout
    assert "object-store-mounting  required  FAIL" in result.stdout
    assert "MISSING  daemonsets.apps -n skypilot-system" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr

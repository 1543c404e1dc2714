"""The README's commands, run as a newcomer would (so they cannot rot)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def test_readme_names_exactly_the_two_commands_ci_uses():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)


@pytest.mark.cluster
def test_demo_catches_fixes_and_rechecks_green(cluster):
    # The demo starts and stops its own control plane (the session one is only a
    # guarantee that the binaries are built).
    result = subprocess.run(
        [sys.executable, "scripts/demo.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    # The answer first: the offline check's finding is printed before the control plane
    # is started (its first build takes minutes), then the live check finds it again.
    starting = out.index("== starting a local kube-apiserver")
    offline, live = out[:starting], out[starting:]
    assert "$ skycheck --manifests " in offline
    assert "object-store-mounting  required  FAIL" in offline
    assert "(exit 1)" in offline
    assert "$ skycheck --manifests " not in live
    assert "object-store-mounting  required  FAIL" in live
    # Green again after the fix (a denial SkyPilot survives may remain, shown as LOSES).
    assert "skycheck PASS  ServiceAccount default/sky-sa" in out
    # The docs' account is its own remote_identity: SkyPilot bootstraps nothing for it,
    # so the demo's fix never suggests RBAC write rights (a route to cluster-admin).
    assert "rbac-bootstrap  n/a" in out
    for word in ("escalate", "bind", "clusterroles", "rolebindings"):
        assert f'"{word}"' not in out, word
    assert "demo done" in out
    assert "Traceback" not in result.stderr

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
    assert "object-store-mounting  required  FAIL" in out
    assert "all 98 checks granted" in out
    assert "demo done" in out
    assert "Traceback" not in result.stderr

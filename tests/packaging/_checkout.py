"""A committed snapshot of this work tree, for tools that install skycheck from a git rev."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# Commits without the developer's git identity (HOME is empty in the tests).
GIT_IDENTITY = ("-c", "user.name=skycheck tests", "-c", "user.email=tests@skycheck.invalid")


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` and return its stdout (raises on failure)."""
    return subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def snapshot(dest: Path) -> str:
    """Copy the work tree's tracked and untracked, not ignored, files into a new repository
    at ``dest`` and commit them; return the commit id.

    pre-commit and pip install from a commit, and the change under test may not be
    committed yet (``pre-commit try-repo`` makes the same kind of shadow commit).
    """
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    dest.mkdir(parents=True)
    for name in sorted(set(filter(None, listed.split("\0")))):
        source = ROOT / name
        if not source.is_file():  # deleted in the work tree but still in the index
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "snapshot")
    return git(dest, "rev-parse", "HEAD").strip()

"""Where the pinned SkyPilot installs live, and which are complete: the lab's venvs
(tests/skypilot/venvs.py, which .ci/run installs); nothing here installs anything."""

from __future__ import annotations

from pathlib import Path

from tests.skypilot import venvs

COMPLETE_STAMP = venvs.STAMP
# skycheck reads ~/.sky/config.yaml as 0.13 and later do. Releases before 0.13 read it
# otherwise (0.12.3.post1: a remote_identity map matches contexts exactly, globs refused;
# 80 of 302 combinations disagree), which skycheck does not model yet: not compared here.
PINNED = tuple(v for v in venvs.VERSIONS if venvs.fixed_api_port(v) is None)


def venv_root() -> Path:
    """The directory holding one venv per pinned SkyPilot version."""
    return venvs.venv_dir(PINNED[0]).parent


def venv_python(key: str) -> Path | None:
    """The python of the SkyPilot venv ``key``, or None while it is absent or incomplete."""
    return venvs.python_bin(key) if venvs.complete(key) else None

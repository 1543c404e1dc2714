"""Where the pinned SkyPilot installs live, and which are complete: the lab's venvs
(tests/skypilot/venvs.py, which .ci/run installs); nothing here installs anything."""

from __future__ import annotations

from pathlib import Path

from tests.skypilot import venvs

COMPLETE_STAMP = venvs.STAMP
# Every proven release: skycheck reads the config as each release line does
# (skycheck/skyconfig_dialect.py), so each is compared with its own reading.
PINNED = tuple(venvs.VERSIONS)


def venv_root() -> Path:
    """The directory holding one venv per pinned SkyPilot version."""
    return venvs.venv_dir(PINNED[0]).parent


def venv_python(key: str) -> Path | None:
    """The python of the SkyPilot venv ``key``, or None while it is absent or incomplete."""
    return venvs.python_bin(key) if venvs.complete(key) else None

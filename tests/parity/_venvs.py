"""Where the pinned SkyPilot installs live, and which are complete."""

from __future__ import annotations

from pathlib import Path

from tests.cluster.build import cache_dir

# One venv per pinned SkyPilot under the test cache ($SKYCHECK_CACHE or
# ~/.cache/skycheck), each complete once it holds COMPLETE_STAMP. .ci/run installs
# them (tests/skypilot/); nothing here installs anything.
SKYPILOT_VENV_SUBDIR = "skypilot"
COMPLETE_STAMP = ".complete"
PINNED = ("0.14.1", "nightly-1.0.0.dev20261027")


def venv_root() -> Path:
    """The directory holding one venv per pinned SkyPilot version."""
    return cache_dir() / SKYPILOT_VENV_SUBDIR


def venv_python(key: str) -> Path | None:
    """The python of the SkyPilot venv ``key``, or None while it is absent or incomplete."""
    root = venv_root() / key
    python = root / "bin" / "python"
    if (root / COMPLETE_STAMP).exists() and python.exists():
        return python
    return None

"""Where the pinned SkyPilot installs live, and which are complete."""

from __future__ import annotations

from pathlib import Path

# One venv per pinned SkyPilot, each complete once it holds COMPLETE_STAMP. .ci/run
# installs them (tests/skypilot/); nothing here installs anything.
SKYPILOT_VENV_ROOT = Path.home() / ".cache" / "skycheck" / "skypilot"
COMPLETE_STAMP = ".complete"
PINNED = ("0.14.1", "nightly-1.0.0.dev20261027")


def venv_python(key: str) -> Path | None:
    """The python of the SkyPilot venv ``key``, or None while it is absent or incomplete."""
    root = SKYPILOT_VENV_ROOT / key
    python = root / "bin" / "python"
    if (root / COMPLETE_STAMP).exists() and python.exists():
        return python
    return None

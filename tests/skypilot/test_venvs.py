"""The SkyPilot venv installer's bookkeeping (no install happens here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.skypilot import venvs


def test_unknown_version_is_refused() -> None:
    with pytest.raises(venvs.VenvError, match="unknown SkyPilot lab version"):
        venvs.venv_dir("0.0.1")


def test_a_stamped_venv_is_complete_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYCHECK_CACHE", str(tmp_path))
    version = next(iter(venvs.VERSIONS))
    target = tmp_path / "skypilot" / version
    assert venvs.venv_dir(version) == target
    assert not venvs.complete(version)
    target.mkdir(parents=True)
    (target / venvs.STAMP).touch()

    # Complete: returned as is, no pip run (there is no pip in this directory to run).
    assert venvs.ensure_venv(version) == target
    assert venvs.complete(version)

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


def test_releases_before_0_14_have_the_fixed_api_port() -> None:
    assert venvs.fixed_api_port("0.12.3.post1") == venvs.FIXED_API_PORT == 46580
    assert venvs.fixed_api_port("0.10.3.post2") == 46580
    assert venvs.fixed_api_port("0.13.0") == 46580
    assert venvs.fixed_api_port("0.14.1") is None
    assert venvs.fixed_api_port("nightly-1.0.0.dev20261027") is None

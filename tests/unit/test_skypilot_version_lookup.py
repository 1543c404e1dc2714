"""The installed SkyPilot is found as importlib.metadata finds it, without importing it."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from skycheck import skypilot_version
from tests.parity._venvs import venv_root


def _dist_info(root: Path, dirname: str, version: str, *, egg: bool = False) -> None:
    path = root / dirname
    path.mkdir(parents=True)
    header = f"Metadata-Version: 2.1\nName: {dirname.split('-')[0]}\nVersion: {version}\n\nBody\n"
    (path / ("PKG-INFO" if egg else "METADATA")).write_text(header)


def _expected() -> str | None:
    for dist in ("skypilot-nightly", "skypilot"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


LAYOUTS = {
    "none": [],
    "stable": [("a", "skypilot-0.14.1.dist-info", "0.14.1", False)],
    "nightly": [("a", "skypilot_nightly-1.0.0.dev20261027.dist-info", "1.0.0.dev20261027", False)],
    "both": [
        ("a", "skypilot-0.14.1.dist-info", "0.14.1", False),
        ("b", "skypilot_nightly-1.0.0.dev20261027.dist-info", "1.0.0.dev20261027", False),
    ],
    "first-on-path-wins": [
        ("a", "skypilot-0.14.1.dist-info", "0.14.1", False),
        ("b", "skypilot-0.13.0.dist-info", "0.13.0", False),
    ],
    "egg-info-and-odd-case": [("a", "SkyPilot.egg-info", "0.12.0", True)],
    "similar-names": [
        ("a", "skypilot_extra-9.9.dist-info", "9.9", False),
        ("a", "skypilotx-8.8.dist-info", "8.8", False),
    ],
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_installed_agrees_with_importlib_metadata(layout, tmp_path, monkeypatch):
    for sub, dirname, version, egg in LAYOUTS[layout]:
        _dist_info(tmp_path / sub, dirname, version, egg=egg)
    monkeypatch.setattr(sys, "path", [str(tmp_path / "a"), str(tmp_path / "b"), "/nonexistent"])
    assert skypilot_version.installed() == _expected()
    if layout not in ("none", "similar-names"):
        assert skypilot_version.installed() is not None


def test_a_real_skypilot_venv_is_read_as_its_own_importlib_metadata_reads_it():
    venvs = sorted(venv_root().glob("*/.complete"))
    if not venvs:
        pytest.skip("no SkyPilot venv installed (tests/skypilot)")
    for stamp in venvs:
        python = stamp.parent / "bin" / "python"
        code = (
            "import sys\nfrom importlib import metadata\n"
            "paths = [p for p in sys.path if p.endswith('site-packages')]\n"
            "for d in ('skypilot-nightly', 'skypilot'):\n"
            "    try:\n        print(metadata.version(d)); break\n"
            "    except metadata.PackageNotFoundError: pass\n"
            "print(*paths, sep='\\n')\n"
        )
        lines = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        expected, paths = lines[0], lines[1:]
        old = sys.path
        try:
            sys.path = paths
            assert skypilot_version.installed() == expected
        finally:
            sys.path = old

"""The release artefacts: sdist and wheel built, checked by twine, installed and run.

``python -m build`` builds the sdist, then the wheel from the sdist (so the sdist is proven
complete); the wheel is installed into a fresh virtual environment, outside the work tree,
and its console script runs skycheck's main job offline on the docs' manifest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from skycheck import __version__
from tests.packaging._checkout import ROOT

pytestmark = pytest.mark.packaging

DOCS_MANIFEST = ROOT / "tests" / "manifests" / "create-sky-sa.yaml"


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False, **kwargs)  # type: ignore[call-overload, no-any-return]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)])
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return out


def test_sdist_and_wheel_pass_twine_check(dist):
    names = sorted(p.name for p in dist.iterdir())
    assert names == [f"skycheck-{__version__}-py3-none-any.whl", f"skycheck-{__version__}.tar.gz"]
    checked = _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2


def test_wheel_holds_the_package_data_and_nothing_of_the_tests(dist):
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "skycheck/_rules/core.yaml",
        "skycheck/_rules/schema.json",
        "skycheck/_rules/skypilot-versions.json",
        "skycheck/_rules/skypilot-releases.json",
        "skycheck/data/bootstrap-rbac.json",
        "skycheck/render/report.schema.json",
    ):
        assert needed in names, needed
    assert not any(n.startswith("tests/") for n in names)
    entry_points = zipfile.ZipFile(wheel).read(f"skycheck-{__version__}.dist-info/entry_points.txt")
    assert b"skycheck = " in entry_points and b"kubectl-skycheck = " in entry_points
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = {m.split("/", 1)[1] for m in archive.getnames() if "/" in m}
    assert {"CHANGELOG.md", "README.md", "rules/core.yaml", "pyproject.toml"} <= members


def test_the_installed_wheel_runs_offline(dist, tmp_path):
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)])
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    installed = _run([*pip, str(wheel)])
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    # A clean process: no work tree on sys.path, run from a directory outside it.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    where = _run(
        [str(python), "-c", "import skycheck, sys; print(skycheck.__file__); print(sys.path)"],
        cwd=tmp_path,
        env=env,
    )
    assert where.returncode == 0, where.stderr
    module_file, path = where.stdout.splitlines()
    assert Path(module_file).is_relative_to(venv)
    assert str(ROOT) not in path

    skycheck = str(venv / "bin" / "skycheck")
    version = _run([skycheck, "--version"], cwd=tmp_path, env=env)
    assert (version.returncode, version.stdout) == (0, f"skycheck {__version__}\n")

    rules = _run([skycheck, "rules", "-o", "json"], cwd=tmp_path, env=env)
    assert rules.returncode == 0, rules.stderr
    assert "core" in {feature["name"] for feature in json.loads(rules.stdout)["features"]}

    manifest = tmp_path / "create-sky-sa.yaml"
    manifest.write_text(DOCS_MANIFEST.read_text())
    check = _run(
        [skycheck, "--manifests", manifest.name, "--sa", "sky-sa", "-n", "default", "-o", "json"],
        cwd=tmp_path,
        env=env,
    )
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    report = json.loads(check.stdout)
    assert (report["verdict"], report["mode"]) == ("pass", "offline")
    table = _run(
        [skycheck, "--manifests", manifest.name, "--sa", "sky-sa", "-n", "default"],
        cwd=tmp_path,
        env=env,
    )
    assert table.returncode == 0 and re.search(r"^skycheck PASS ", table.stdout, re.M)
    assert "Traceback" not in check.stderr + table.stderr

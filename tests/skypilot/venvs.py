"""Cached SkyPilot installs, one venv per version, under ``<cache>/skypilot/<version>/``.

A venv is complete when it holds the file ``.complete``, written last. ``ensure_venv`` creates
the venv at its final path, pip-installs the pinned requirement, then writes the stamp; a lock
file per version keeps two processes from installing into one venv, and an unstamped venv
(an interrupted install) is removed and redone.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from tests.cluster.build import cache_dir

# Lab version name -> pip requirement. The first is the release the catalogue was read from.
VERSIONS: dict[str, str] = {
    "0.14.1": "skypilot[kubernetes]==0.14.1",
    "nightly-1.0.0.dev20261027": "skypilot-nightly[kubernetes]==1.0.0.dev20261027",
    "0.12.3.post1": "skypilot[kubernetes]==0.12.3.post1",
    "0.10.3.post2": "skypilot[kubernetes]==0.10.3.post2",
    "0.13.0": "skypilot[kubernetes]==0.13.0",
}
# Upper bounds installed with a version: its own requirements leave them open, and later
# releases of these packages break it (fastapi 0.145 breaks the API server of 0.13.0 and of
# every older release the lab runs: `FastAPI.__init__() got an unexpected keyword 'prefix'`).
PINS: dict[str, tuple[str, ...]] = {
    "0.12.3.post1": ("fastapi<0.145",),
    # 0.10 leaves the Kubernetes client unbounded; 0.12 requires <36.0.0 itself: the same bound.
    "0.10.3.post2": ("fastapi<0.145", "kubernetes<36"),
    "0.13.0": ("fastapi<0.145",),
}
STAMP = ".complete"
# SkyPilot's API server port before 0.14: fixed (SKYPILOT_API_SERVER_LOCAL_PORT came later).
FIXED_API_PORT = 46580


class VenvError(RuntimeError):
    """A SkyPilot venv could not be created or is unknown."""


def venv_dir(version: str) -> Path:
    """Final path of the venv for lab ``version`` (a key of :data:`VERSIONS`)."""
    if version not in VERSIONS:
        raise VenvError(f"unknown SkyPilot lab version {version!r}; known: {', '.join(VERSIONS)}")
    return cache_dir() / "skypilot" / version


def fixed_api_port(version: str) -> int | None:
    """The API server port ``version`` always uses, or None when it takes a private one.

    Releases before 0.14 serve on :data:`FIXED_API_PORT` whatever the environment says
    (0.13.0's sky/server/common.py hard-codes it; 0.14.1 reads
    SKYPILOT_API_SERVER_LOCAL_PORT), so their runs cannot share the machine with each other
    (see runner.fixed_port_lock).
    """
    if version.startswith("nightly-"):
        return None
    major_minor = tuple(int(p) for p in version.split(".")[:2])
    return FIXED_API_PORT if major_minor < (0, 14) else None


def complete(version: str) -> bool:
    """True if the venv for ``version`` is installed and stamped."""
    return (venv_dir(version) / STAMP).is_file()


def sky_bin(version: str) -> Path:
    """The ``sky`` executable of a complete venv."""
    return venv_dir(version) / "bin" / "sky"


def python_bin(version: str) -> Path:
    """The venv's python (for driving SkyPilot functions the CLI does not reach)."""
    return venv_dir(version) / "bin" / "python"


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_venv(version: str, log: TextIO | None = None) -> Path:
    """Install SkyPilot ``version`` into its venv unless already complete; return the venv."""
    out = log if log is not None else sys.stderr
    target = venv_dir(version)
    if complete(version):
        return target
    with _lock(target.with_name(f".{version}.lock")):
        if complete(version):  # the lock's previous holder finished it
            return target
        # An unstamped venv is an interrupted install (or one still running without our
        # lock, which the lab's own installs never do): start over.
        shutil.rmtree(target, ignore_errors=True)
        started = time.monotonic()
        wanted = " ".join((VERSIONS[version], *PINS.get(version, ())))
        print(f"installing {wanted} into {target} ...", file=out, flush=True)
        _run([sys.executable, "-m", "venv", str(target)])
        pip = str(target / "bin" / "pip")
        _run([pip, "install", "--quiet", "--upgrade", "pip"])
        _run([pip, "install", "--quiet", VERSIONS[version], *PINS.get(version, ())])
        (target / STAMP).touch()
        print(f"installed {version} in {time.monotonic() - started:.0f}s", file=out, flush=True)
    return target


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise VenvError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr[-3000:]}")

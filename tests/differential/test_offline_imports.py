"""Offline mode and ``--help`` stay light: ``kubernetes`` is never imported.

``python -X importtime`` of a real ``skycheck --manifests`` run lists every module imported;
the kubernetes client costs about half a second (docs/benchmarks.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.synthetic import write_synthetic

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "skycheck", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines}


def test_offline_run_does_not_import_kubernetes(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    write_synthetic(path, 1_000)
    modules = imported_modules(
        "--manifests", str(path), "--sa", "sky-sa", "-n", "team-0", "--all-features", "-o", "json"
    )
    assert "skycheck.manifests" in modules and "yaml" in modules
    assert not {m for m in modules if m.split(".")[0] == "kubernetes"}
    # typer reads the command line (and imports pydantic to coerce its values); skycheck's
    # frozen classes are dataclasses; PyYAML reads the rules and the manifest. The table's
    # renderer is not needed for JSON.
    assert {"typer", "dataclasses", "yaml"} <= modules
    assert not {m for m in modules if m.split(".")[0] == "rich"}


def test_help_imports_neither_kubernetes_nor_the_check() -> None:
    modules = imported_modules("--help")
    assert "typer" in modules
    assert not {m for m in modules if m.split(".")[0] in ("kubernetes", "rich", "pydantic")}
    # --help builds no request and reads no input.
    assert not modules & {"skycheck.request", "skycheck.manifests", "yaml"}

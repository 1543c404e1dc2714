"""Each path of skycheck against its floor, whole processes, in one run.

The floor of a run is what no implementation in this interpreter can avoid:

- ``python -c pass``: one Python start;
- ``python -c "import skycheck.<modules>"``: the imports the path needs;
- offline: the parse of the input alone (``_parse_floor.py``): YAML with PyYAML's C loader
  as strict as skycheck's (duplicate keys refused), JSON with ``json`` as it comes and with
  skycheck's duplicate-key hook;
- live: one TLS handshake and one round of the same access reviews sent concurrently by a
  minimal client (``_live_floor.py``: urllib3, one connection pool, no validation), and the
  same checks as a ``kubectl auth can-i`` loop, the tool people would otherwise use.

Rows of one group run interleaved (A, B, C, A, B, C, ...) after one warm-up round, so each
round's ratios compare runs made under the same load: on a shared, noisy machine the median of
the paired ratios is steadier than a ratio of medians. Wall time is what a user waits; CPU time
(user + system of the child) is less sensitive to other load. Figures only, never assertions.

Bytecode: the package is compiled first (``compileall``), as pip does when it installs the
wheel, so a run with ``PYTHONDONTWRITEBYTECODE`` set does not time the compiler.
"""

from __future__ import annotations

import compileall
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

OFFLINE_IMPORTS = (
    "skycheck.cli, skycheck.request, skycheck.manifests, skycheck.review.offline, "
    "skycheck.locate, skycheck.render.json_report"
)
LIVE_IMPORTS = (
    "skycheck.cli, skycheck.request, skycheck.kube, skycheck.review.live, "
    "skycheck.render.json_report"
)


@dataclass
class Row:
    """One command of a group, with its samples."""

    name: str
    argv: list[str]
    ok: tuple[int, ...] = (0, 1)
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def compile_package() -> None:
    compileall.compile_dir(str(ROOT / "skycheck"), quiet=1)


def run_once(argv: Sequence[str], ok: tuple[int, ...]) -> tuple[float, float]:
    """(wall, cpu) seconds of one child process, its output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, check=False, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in ok:
        raise SystemExit(
            f"{shlex.join(argv)[:200]}: exit {result.returncode}: {result.stderr[-400:]!r}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(rows: list[Row], runs: int, warmup: int = 1) -> None:
    """Interleaved runs: every row once per round, ``warmup`` rounds not recorded."""
    for round_ in range(warmup + runs):
        for row in rows:
            wall, cpu = run_once(row.argv, row.ok)
            if round_ >= warmup:
                row.wall.append(wall)
                row.cpu.append(cpu)


def summary(group: str, rows: list[Row], base: str) -> dict[str, Any]:
    """Medians per row, and the median of each row's per-round ratio to row ``base``."""
    ref = next(r for r in rows if r.name == base)
    out: dict[str, Any] = {"group": group, "base": base, "runs": len(ref.wall), "rows": []}
    for row in rows:
        out["rows"].append(
            {
                "name": row.name,
                "wall_median_s": statistics.median(row.wall),
                "cpu_median_s": statistics.median(row.cpu),
                "wall_ratio": statistics.median(
                    a / b for a, b in zip(row.wall, ref.wall, strict=True)
                ),
                "cpu_ratio": statistics.median(
                    a / b for a, b in zip(row.cpu, ref.cpu, strict=True)
                ),
            }
        )
    return out


def print_group(figures: dict[str, Any]) -> None:
    print(f"\n{figures['group']}  ({figures['runs']} paired runs; ratios to {figures['base']})")
    print(f"  {'':44} {'wall':>8} {'cpu':>8} {'wall x':>8} {'cpu x':>8}")
    for r in figures["rows"]:
        print(
            f"  {r['name']:44} {r['wall_median_s']:8.3f} {r['cpu_median_s']:8.3f} "
            f"{r['wall_ratio']:8.2f} {r['cpu_ratio']:8.2f}"
        )
    for key, value in figures.items():
        if key not in ("group", "base", "runs", "rows"):
            print(f"  {key}: {value}")


def _skycheck(*args: str) -> list[str]:
    return [PY, "-m", "skycheck", *args]


def _imports(modules: str) -> list[str]:
    return [PY, "-c", f"import {modules}"]


def _parse_alone(mode: str, path: Path) -> list[str]:
    return [PY, str(Path(__file__).with_name("_parse_floor.py")), mode, str(path)]


PARSE_FLOORS = {
    "yaml": "parse alone (PyYAML C loader, strict)",
    "json": "parse alone (json)",
    "json-strict": "parse alone (json, duplicate keys refused)",
}


def offline_group(
    name: str, manifest: Path, args: list[str], runs: int, floors: Sequence[str] = ()
) -> dict[str, Any]:
    """The offline check of ``manifest`` against its floors: ``python -c pass``, the imports,
    and the parse alone in each of ``floors`` (keys of PARSE_FLOORS), each also as a ratio."""
    rows = [
        Row("python -c pass", [PY, "-c", "pass"]),
        Row("import what offline needs", _imports(OFFLINE_IMPORTS)),
        *(Row(PARSE_FLOORS[mode], _parse_alone(mode, manifest)) for mode in floors),
        Row("skycheck (whole command)", _skycheck("--manifests", str(manifest), *args)),
    ]
    measure(rows, runs)
    figures = summary(name, rows, "python -c pass")
    for mode in floors:
        whole = summary(name, rows, PARSE_FLOORS[mode])["rows"][-1]
        figures[f"whole command / {PARSE_FLOORS[mode]}"] = (
            f"wall {whole['wall_ratio']:.2f}x, cpu {whole['cpu_ratio']:.2f}x"
        )
    return figures


def help_group(runs: int) -> dict[str, Any]:
    rows = [
        Row("python -c pass", [PY, "-c", "pass"]),
        Row("import typer", _imports("typer")),
        Row("skycheck --help", _skycheck("--help"), ok=(0,)),
    ]
    measure(rows, runs)
    return summary("--help", rows, "python -c pass")


def live_group(
    kubeconfig: Path,
    args: list[str],
    floor_spec: Path,
    kubectl_loop: list[list[str]],
    runs: int,
) -> dict[str, Any]:
    """The live check against its floors and the kubectl loop (run once per round)."""
    floor = [PY, str(Path(__file__).with_name("_live_floor.py")), str(floor_spec)]
    rows = [
        Row("python -c pass", [PY, "-c", "pass"]),
        Row("import what live needs", _imports(LIVE_IMPORTS)),
        Row("TLS + one round of reviews (urllib3)", floor, ok=(0,)),
        Row("skycheck (whole command)", _skycheck("--kubeconfig", str(kubeconfig), *args)),
    ]
    measure(rows, runs)
    figures = summary("live", rows, "python -c pass")
    floor_ratio = summary("live", rows, "TLS + one round of reviews (urllib3)")["rows"][-1]
    figures["whole command / minimal client"] = (
        f"wall {floor_ratio['wall_ratio']:.2f}x, cpu {floor_ratio['cpu_ratio']:.2f}x"
    )
    # The kubectl loop, each paired with the mean of a skycheck run just before and just after
    # it (a loop takes seconds; the load can change within one).
    loop_wall, loop_cpu, sky_wall, sky_cpu = [], [], [], []
    for _ in range(max(1, min(runs, 3))):
        before = run_once(rows[-1].argv, rows[-1].ok)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        for argv in kubectl_loop:
            subprocess.run(argv, capture_output=True, check=False)
        loop_wall.append(time.perf_counter() - start)
        after_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        loop_cpu.append(
            after_usage.ru_utime - usage.ru_utime + after_usage.ru_stime - usage.ru_stime
        )
        after = run_once(rows[-1].argv, rows[-1].ok)
        sky_wall.append((before[0] + after[0]) / 2)
        sky_cpu.append((before[1] + after[1]) / 2)
    figures["checks"] = len(kubectl_loop)
    figures["kubectl can-i loop"] = (
        f"wall {statistics.median(loop_wall):.2f} s, cpu {statistics.median(loop_cpu):.2f} s"
    )
    wall_x = statistics.median(a / b for a, b in zip(loop_wall, sky_wall, strict=True))
    cpu_x = statistics.median(a / b for a, b in zip(loop_cpu, sky_cpu, strict=True))
    figures["speed-up over the kubectl loop"] = f"wall {wall_x:.1f}x, cpu {cpu_x:.1f}x"
    return figures


def write_floor_spec(
    path: Path, server: str, ca: Path, token: str, bodies: list[dict[str, Any]]
) -> None:
    """The minimal client's input, readable by the owner only (it holds a token)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"server": server, "ca": str(ca), "token": token, "bodies": bodies}, f)

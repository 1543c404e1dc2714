"""Offline mode speed: the full catalogue against synthetic clusters, end to end.

Figures, not assertions (docs/benchmarks.md has the latest). By hand::

    .venv/bin/python benchmarks/offline.py            # everything, 7 runs each
    .venv/bin/python benchmarks/offline.py --quick    # 3 runs, fewer sizes
    .venv/bin/python benchmarks/offline.py --json

- sizes: 1k, 2.5k, 5k, 10k and 20k RBAC objects (benchmarks/synthetic.py), the whole process
  ``skycheck --manifests big.yaml --sa sky-sa -n team-0 --all-features -o json``: wall and
  CPU time; and the same objects as ``kubectl get -o json`` writes them.
- bound: 10k objects of which 10 to 5,000 RoleBindings name the checked account.
- phases: where the time of the 10k run goes, measured in a fresh interpreter.
- imports: ``python -X importtime`` of the 10k run; ``kubernetes`` must not be imported.

CPU time (user + system, of the child) is the steadier figure on a shared machine; wall time
is what a user waits. Each figure is the median of the runs, with the minimum.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.synthetic import write_kubectl_json, write_synthetic  # noqa: E402

ARGS = ["--sa", "sky-sa", "-n", "team-0", "--all-features", "-o", "json"]
BOUND_SUBJECT = "{kind: ServiceAccount, name: sky-sa, namespace: team-0}"


def run_child(cmd: list[str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[:4])}...: exit {result.returncode}: {result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(path: Path, runs: int) -> dict[str, float]:
    cmd = [sys.executable, "-m", "skycheck", "--manifests", str(path), *ARGS]
    samples = [run_child(cmd) for _ in range(runs)]
    walls, cpus = [w for w, _ in samples], [c for _, c in samples]
    return {
        "wall_median_s": statistics.median(walls),
        "wall_min_s": min(walls),
        "cpu_median_s": statistics.median(cpus),
        "cpu_min_s": min(cpus),
    }


def write_bound(path: Path, size: int, bound: int) -> int:
    """The synthetic cluster, with ``bound`` of its RoleBindings naming the checked account
    (in every namespace: each is looked at for each check). Returns how many do."""
    write_synthetic(path, size)
    text = path.read_text()
    count = 0

    def rebind(match: re.Match[str]) -> str:
        nonlocal count
        if count >= bound:
            return match.group(0)
        count += 1
        return BOUND_SUBJECT

    text = re.sub(r"\{kind: ServiceAccount, name: user-\d+, namespace: team-\d+\}", rebind, text)
    path.write_text(text)
    return count


PHASES_CHILD = r"""
import contextlib, io, json, sys, time
t0 = time.perf_counter()
from skycheck.cli import run
from skycheck import manifests, yamlio
from skycheck.review.offline import OfflineReviewer
t1 = time.perf_counter()
path = sys.argv[1]
text = yamlio.read_text(path, what="manifest")
t2 = time.perf_counter()
load = yamlio.load_json_all if path.endswith(".json") else yamlio.load_all
docs = list(load(text, path, what="manifest"))
del docs
t3 = time.perf_counter()
loaded = manifests.parse_text(text, path, default_namespace="team-0")
t4 = time.perf_counter()
reviewer = OfflineReviewer.from_manifests(loaded)
t5 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    run(["--manifests", path] + sys.argv[2:])
t6 = time.perf_counter()
print(json.dumps({
    "imports_s": t1 - t0, "read_s": t2 - t1, "parse_s": t3 - t2,
    "objects_s": (t4 - t3) - (t3 - t2), "state_s": t5 - t4, "whole_run_in_process_s": t6 - t5,
}))
"""


def phases(path: Path, runs: int) -> dict[str, Any]:
    rows = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PHASES_CHILD, str(path), *ARGS],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
        rows.append(json.loads(out))
    result: dict[str, Any] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    interp = [run_child([sys.executable, "-c", "pass"])[0] for _ in range(runs)]
    result["interpreter_start_s"] = statistics.median(interp)
    return result


def imports(path: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-X", "importtime", "-m", "skycheck", "--manifests", str(path), *ARGS]
    err = subprocess.run(cmd, capture_output=True, text=True, check=False).stderr
    lines = [line for line in err.splitlines() if line.startswith("import time")]
    modules = {line.rsplit("|", 1)[1].strip() for line in lines}
    return {
        "kubernetes_imported": any(m.split(".")[0] == "kubernetes" for m in modules),
        "pyyaml_imported": "yaml" in modules,
        "modules": len(modules),
    }


def table(section: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        cells = ", ".join(
            f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
        )
        print(f"{section:8} {cells}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 runs, fewer sizes")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 7)
    sizes = [1_000, 10_000] if args.quick else [1_000, 2_500, 5_000, 10_000, 20_000]
    bounds = [10, 1_000] if args.quick else [10, 100, 1_000, 2_500, 5_000]
    figures: dict[str, Any] = {"python": sys.version.split()[0], "runs": runs}
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for size in sizes:
            path = Path(tmp) / f"rbac-{size}.yaml"
            bound = write_synthetic(path, size)
            listing = path.with_suffix(".json")
            write_kubectl_json(path, listing)
            as_json = measure(listing, runs)
            rows.append(
                {
                    "objects": size,
                    "megabytes": round(path.stat().st_size / 1e6, 2),
                    "bound_to_subject": bound,
                    **measure(path, runs),
                    "json_megabytes": round(listing.stat().st_size / 1e6, 2),
                    "json_cpu_median_s": as_json["cpu_median_s"],
                    "json_wall_median_s": as_json["wall_median_s"],
                }
            )
        figures["sizes"] = rows
        rows = []
        for bound in bounds:
            path = Path(tmp) / f"bound-{bound}.yaml"
            count = write_bound(path, 10_000, bound)
            rows.append({"objects": 10_000, "rebound": count, **measure(path, runs)})
        figures["bound"] = rows
        big = Path(tmp) / "rbac-10000.yaml"
        if not big.exists():
            write_synthetic(big, 10_000)
        figures["phases"] = phases(big, runs)
        big_json = big.with_suffix(".json")
        if not big_json.exists():
            write_kubectl_json(big, big_json)
        figures["phases_json"] = phases(big_json, runs)
        figures["imports"] = imports(big)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        table("sizes", figures["sizes"])
        table("bound", figures["bound"])
        table("phases", [figures["phases"]])
        table("phases (JSON)", [figures["phases_json"]])
        table("imports", [figures["imports"]])
    return 0


if __name__ == "__main__":
    sys.exit(main())

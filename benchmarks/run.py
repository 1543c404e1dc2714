"""skycheck benchmarks: run by hand, and in CI as a smoke run (``--smoke``).

Figures, not assertions: the numbers go to stdout (a table, or JSON with
``--json``) and into docs/benchmarks.md by hand. Nothing here fails on speed.

- startup: ``skycheck --help`` wall time (``import kubernetes`` must stay off it).
- live: the full catalogue (``--all-features``) checked by skycheck against the
  local control plane, versus the same checks made one ``kubectl auth can-i``
  call at a time, in one run; reported as a ratio.
- offline: the full catalogue evaluated offline against synthetic clusters of
  RBAC objects (benchmarks/synthetic.py), at several sizes, to show the growth.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SKYCHECK = [sys.executable, "-m", "skycheck"]


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _run(cmd: list[str], ok: tuple[int, ...] = (0, 1)) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode not in ok:
        raise SystemExit(
            f"{' '.join(cmd[:6])}...: exit {result.returncode}: {result.stderr[-500:]}"
        )
    return result


def bench_startup(runs: int) -> dict[str, float]:
    times = timed(lambda: _run([*SKYCHECK, "--help"], ok=(0,)), runs)
    return {"help_median_s": statistics.median(times), "help_min_s": min(times)}


def _kubectl_args(check: dict[str, str]) -> list[str]:
    res = check["resource"] + (f".{check['group']}" if check["group"] else "")
    args = ["auth", "can-i", check["verb"], res]
    if check["subresource"]:
        args.append(f"--subresource={check['subresource']}")
    args += ["-n", check["namespace"]] if check["namespace"] else ["--all-namespaces"]
    return args


def bench_live(plane: object, runs: int) -> dict[str, float]:
    from tests.cluster.controlplane import ControlPlane

    assert isinstance(plane, ControlPlane)
    plane.create_namespace("bench", exist_ok=True)
    for name in ("skypilot-system", "ingress-nginx"):
        plane.create_namespace(name, exist_ok=True)
    manifest = (ROOT / "tests" / "manifests" / "create-sky-sa.yaml").read_text()
    plane.apply(manifest.replace("namespace: default", "namespace: bench"))
    base = [
        *SKYCHECK,
        "--kubeconfig",
        str(plane.admin_kubeconfig),
        "--sa",
        "sky-sa",
        "-n",
        "bench",
        "--all-features",
        # a launcher on SkyPilot's default path: every rule of the catalogue applies
        "--remote-identity",
        "SERVICE_ACCOUNT",
        "-o",
        "json",
    ]
    report = json.loads(_run(base).stdout)
    checks = report["checks"]
    sky_times = timed(lambda: _run(base), runs)
    as_sa = "--as=system:serviceaccount:bench:sky-sa"

    def kubectl_loop() -> None:
        for check in checks:
            subprocess.run(
                [
                    str(plane.kubectl_path),
                    "--kubeconfig",
                    str(plane.admin_kubeconfig),
                    *_kubectl_args(check),
                    as_sa,
                ],
                capture_output=True,
                check=False,
            )

    loop = timed(kubectl_loop, 1)[0]
    sky = statistics.median(sky_times)
    return {
        "checks": len(checks),
        "skycheck_median_s": sky,
        "kubectl_loop_s": loop,
        "speedup": loop / sky,
    }


def bench_offline(sizes: list[int], runs: int) -> list[dict[str, float]]:
    from benchmarks.synthetic import write_synthetic

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            path = Path(tmp) / f"rbac-{size}.yaml"
            bound = write_synthetic(path, size)
            cmd = [
                *SKYCHECK,
                "--manifests",
                str(path),
                "--sa",
                "sky-sa",
                "-n",
                "team-0",
                "--all-features",
                "-o",
                "json",
            ]
            times = timed(lambda cmd=cmd: _run(cmd), runs)
            out.append(
                {
                    "objects": size,
                    "bound_to_subject": bound,
                    "median_s": statistics.median(times),
                    "min_s": min(times),
                }
            )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="few runs, small sizes (CI)")
    parser.add_argument("--json", action="store_true", help="print figures as JSON")
    parser.add_argument("--skip-live", action="store_true", help="no control plane needed")
    args = parser.parse_args()
    runs = 2 if args.smoke else 7
    figures: dict[str, object] = {"startup": bench_startup(runs)}
    sizes = [1_000, 10_000] if args.smoke else [1_000, 2_500, 5_000, 10_000, 20_000]
    figures["offline"] = bench_offline(sizes, runs)
    if not args.skip_live:
        from tests.cluster.controlplane import ControlPlane

        reuse = os.environ.get("SKYCHECK_TEST_KUBECONFIG_DIR")
        if reuse:
            figures["live"] = bench_live(ControlPlane.attach(Path(reuse)), runs)
        else:
            with tempfile.TemporaryDirectory() as tmp, ControlPlane(Path(tmp)) as plane:
                figures["live"] = bench_live(plane, runs)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for section, value in figures.items():
            rows = value if isinstance(value, list) else [value]
            for row in rows:
                cells = ", ".join(
                    f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                )
                print(f"{section:8} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

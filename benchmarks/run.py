"""skycheck benchmarks: run by hand, and in CI as a smoke run (``--smoke``).

Figures, not assertions: the numbers go to stdout (tables, or JSON with
``--json``) and into docs/benchmarks.md by hand. Nothing here fails on speed.

Each path side by side with its floor (benchmarks/floors.py), whole processes, paired runs:

- ``--help`` against ``python -c pass`` and ``import typer``;
- offline, the docs example (``create-sky-sa.yaml``, ``-o json``) against ``python -c pass``;
  a synthetic cluster of 10,000 RBAC objects (``--smoke``: 1,000) as YAML, against the parse
  of the same file alone with PyYAML's C loader as strict as skycheck's, and the same objects
  as ``kubectl get -o json`` writes them, against the parse alone with ``json`` (as it comes,
  and with duplicate keys refused as skycheck refuses them);
- live, the full catalogue for a service account (``--all-features --remote-identity
  SERVICE_ACCOUNT``) against the local control plane, against ``python -c pass``, the imports,
  a minimal urllib3 client sending the same reviews, and a ``kubectl auth can-i`` loop;
- offline growth: the whole command at several sizes (not with ``--smoke``);
- across a cluster: ``--all-subjects`` over a dump of 50,000 RBAC objects in which 1,000
  service accounts hold SkyPilot's core feature (``--smoke``: 5,000 and 100), as a kubectl
  List and as YAML, ``-o table`` (the summary) and ``-o json`` (every report); wall and CPU
  time of the whole process (``--audit-only`` runs this group alone).
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

from benchmarks import floors  # noqa: E402


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


def _kubectl_args(check: dict[str, str]) -> list[str]:
    res = check["resource"] + (f".{check['group']}" if check["group"] else "")
    args = ["auth", "can-i", check["verb"], res]
    if check["subresource"]:
        args.append(f"--subresource={check['subresource']}")
    args += ["-n", check["namespace"]] if check["namespace"] else ["--all-namespaces"]
    return args


def _sar_body(check: dict[str, str], user: str, groups: list[str]) -> dict[str, object]:
    attributes = {
        k: check[k] for k in ("verb", "group", "resource", "subresource", "namespace", "name")
    }
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": groups, "resourceAttributes": attributes},
    }


def bench_live(plane: object, runs: int, tmp: Path) -> dict[str, object]:
    from tests.cluster.controlplane import ControlPlane

    assert isinstance(plane, ControlPlane)
    plane.create_namespace("bench", exist_ok=True)
    for name in ("skypilot-system", "ingress-nginx"):
        plane.create_namespace(name, exist_ok=True)
    manifest = (ROOT / "tests" / "manifests" / "create-sky-sa.yaml").read_text()
    plane.apply(manifest.replace("namespace: default", "namespace: bench"))
    args = [
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
    report = json.loads(
        _run([*SKYCHECK, "--kubeconfig", str(plane.admin_kubeconfig), *args]).stdout
    )
    checks = report["checks"]
    subject = report["subject"]
    fields = ("verb", "group", "resource", "subresource", "namespace", "name")
    distinct = {tuple(c[k] for k in fields): c for c in checks}  # skycheck asks once each
    bodies = [_sar_body(c, subject["username"], subject["groups"]) for c in distinct.values()]
    spec = tmp / "live-floor.json"
    floors.write_floor_spec(spec, plane.server, plane.ca_cert, plane.admin_token, bodies)
    as_sa = "--as=system:serviceaccount:bench:sky-sa"
    loop = [
        [
            str(plane.kubectl_path),
            "--kubeconfig",
            str(plane.admin_kubeconfig),
            *_kubectl_args(check),
            as_sa,
        ]
        for check in checks
    ]
    figures = floors.live_group(plane.admin_kubeconfig, args, spec, loop, runs)
    figures["distinct reviews"] = len(bodies)
    return figures


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


def _child(cmd: list[str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one child process (exit 0 or 1)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    _run(cmd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bench_audit(objects: int, holders: int, runs: int) -> list[dict[str, object]]:
    """``--all-subjects`` over a synthetic dump (benchmarks/synthetic.py ``write_audit``)."""
    from benchmarks.synthetic import write_audit, write_kubectl_json

    out: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dump.yaml"
        written = write_audit(path, objects, holders)
        listing = path.with_suffix(".json")
        write_kubectl_json(path, listing)
        for source, fmt in ((listing, "table"), (listing, "json"), (path, "table")):
            cmd = [*SKYCHECK, "--manifests", str(source), "--all-subjects", "-o", fmt]
            first = _run(cmd)
            audited = (
                json.loads(first.stdout)["summary"]["identities"]
                if fmt == "json"
                else int(first.stdout.split()[2])
            )
            samples = [_child(cmd) for _ in range(runs)]
            walls, cpus = [w for w, _ in samples], [c for _, c in samples]
            out.append(
                {
                    "input": "kubectl List (JSON)" if source == listing else "YAML",
                    "output": fmt,
                    "rbac_objects": written,
                    "identities": audited,
                    "wall_median_s": statistics.median(walls),
                    "wall_min_s": min(walls),
                    "cpu_median_s": statistics.median(cpus),
                    "cpu_min_s": min(cpus),
                }
            )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="few runs, small sizes (CI)")
    parser.add_argument("--json", action="store_true", help="print figures as JSON")
    parser.add_argument("--skip-live", action="store_true", help="no control plane needed")
    parser.add_argument("--runs", type=int, default=0, help="paired runs per group")
    parser.add_argument("--audit-only", action="store_true", help="only --all-subjects")
    args = parser.parse_args()
    runs = args.runs or (2 if args.smoke else 9)
    audit_size = (5_000, 100) if args.smoke else (50_000, 1_000)
    if args.audit_only:
        _print_audit(bench_audit(*audit_size, runs=min(runs, 5)), args.json)
        return 0
    floors.compile_package()
    groups: list[dict[str, object]] = [floors.help_group(runs)]
    docs_args = ["--sa", "sky-sa", "-n", "default", "-o", "json"]
    groups.append(
        floors.offline_group(
            "offline: the docs example",
            ROOT / "tests/manifests/create-sky-sa.yaml",
            docs_args,
            runs,
        )
    )
    big = 1_000 if args.smoke else 10_000
    big_args = ["--sa", "sky-sa", "-n", "team-0", "--all-features", "-o", "json"]
    with tempfile.TemporaryDirectory() as tmp:
        from benchmarks.synthetic import write_kubectl_json, write_synthetic

        path = Path(tmp) / f"rbac-{big}.yaml"
        write_synthetic(path, big)
        listing = path.with_suffix(".json")
        write_kubectl_json(path, listing)
        groups.append(
            floors.offline_group(
                f"offline: {big:,} RBAC objects, YAML", path, big_args, runs, ["yaml"]
            )
        )
        groups.append(
            floors.offline_group(
                f"offline: {big:,} RBAC objects, JSON (a kubectl List)",
                listing,
                big_args,
                runs,
                ["json", "json-strict"],
            )
        )
        if not args.skip_live:
            from tests.cluster.controlplane import ControlPlane

            reuse = os.environ.get("SKYCHECK_TEST_KUBECONFIG_DIR")
            if reuse:
                groups.append(bench_live(ControlPlane.attach(Path(reuse)), runs, Path(tmp)))
            else:
                with ControlPlane(Path(tmp) / "plane") as plane:
                    groups.append(bench_live(plane, runs, Path(tmp)))
    growth = [] if args.smoke else bench_offline([1_000, 2_500, 5_000, 10_000, 20_000], runs)
    audit = bench_audit(*audit_size, runs=min(runs, 5))
    if args.json:
        print(json.dumps({"groups": groups, "offline_growth": growth, "audit": audit}, indent=2))
        return 0
    for group in groups:
        floors.print_group(group)
    if growth:
        print("\noffline growth (whole command)")
        for row in growth:
            print(
                "  "
                + ", ".join(
                    f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                )
            )
    _print_audit(audit, False)
    return 0


def _print_audit(rows: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"audit": rows}, indent=2))
        return
    print("\nacross a cluster (--all-subjects, whole command)")
    for row in rows:
        print(
            "  "
            + ", ".join(
                f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            )
        )


if __name__ == "__main__":
    sys.exit(main())

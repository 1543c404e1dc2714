"""Shell entry point: ``python -m tests.cluster {build,up,down}``.

``up --dir DIR`` builds if needed (progress on stderr), starts a detached control plane whose
processes outlive the command (pids in ``DIR/pids.json``), and prints one JSON line on stdout::

    {"kubeconfig": "DIR/admin.kubeconfig", "kubectl": "...", "server": "https://127.0.0.1:N"}

``down --dir DIR`` stops exactly the processes ``up`` recorded (after checking each pid still
runs the same command line) and touches nothing outside DIR. ``build`` only fills the cache.
Point ``SKYCHECK_TEST_KUBECONFIG_DIR`` at an ``up`` dir to make pytest reuse that cluster.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tests.cluster.build import BuildError, ensure_binaries
from tests.cluster.controlplane import ControlPlane, ControlPlaneError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build and cache the binaries (no-op when cached)")
    up = sub.add_parser("up", help="start a detached control plane in DIR")
    up.add_argument("--dir", required=True, type=Path, help="state dir (created if missing)")
    up.add_argument("--audit", action="store_true", help="log every request to DIR/audit.log")
    up.add_argument(
        "--no-controller-manager",
        action="store_true",
        help="skip kube-controller-manager (no aggregation, no default SAs)",
    )
    up.add_argument("--timeout", type=float, default=120.0, help="readiness timeout (s)")
    down = sub.add_parser("down", help="stop the control plane started in DIR")
    down.add_argument("--dir", required=True, type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            binaries = ensure_binaries()
            print(json.dumps({"kubectl": str(binaries.kubectl), "etcd": str(binaries.etcd)}))
        elif args.command == "up":
            state_dir: Path = args.dir.resolve()
            if (state_dir / "pids.json").exists() and ControlPlane.attach(state_dir).running():
                print(f"a control plane is already running in {state_dir}", file=sys.stderr)
                return 1
            ensure_binaries()  # before the clock starts, so the timing below is the start
            started = time.monotonic()
            plane = ControlPlane(
                state_dir,
                audit=args.audit,
                controller_manager=not args.no_controller_manager,
                detach=True,
            ).start(timeout=args.timeout)
            print(f"control plane ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
            line = {
                "kubeconfig": str(plane.admin_kubeconfig),
                "kubectl": str(plane.kubectl_path),
                "server": plane.server,
            }
            print(json.dumps(line), flush=True)
        else:
            ControlPlane.attach(args.dir).stop()
    except (BuildError, ControlPlaneError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

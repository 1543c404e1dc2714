"""Shell entry point: ``python -m tests.skypilot {build,venvs,run,inventory}``.

- ``build``: build and cache kube-scheduler and kwok (and the base control plane).
- ``venvs [--version V]``: install the SkyPilot venvs that are not complete yet.
- ``run OPERATION [--version V] [--admin] [--config YAML]``: start a lab, run one operation as a
  fresh identity (bound to cluster-admin with ``--admin``, else holding nothing), print the run
  as JSON, stop the lab.
- ``inventory [--version V] [--scenario S ...] [--no-necessity]``: regenerate
  ``rules/observed/skypilot-<version>.json`` (all versions by default).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from tests.cluster.build import BuildError, ensure_lab_binaries
from tests.skypilot import venvs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.skypilot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build kube-scheduler and kwok into the cache")
    venv = sub.add_parser("venvs", help="install the SkyPilot venvs")
    venv.add_argument("--version", choices=sorted(venvs.VERSIONS), action="append")
    run = sub.add_parser("run", help="run one operation in a fresh lab")
    run.add_argument("operation")
    run.add_argument("--version", default=next(iter(venvs.VERSIONS)))
    run.add_argument("--admin", action="store_true", help="bind the identity to cluster-admin")
    run.add_argument("--config", default="{}", help="~/.sky/config.yaml content (YAML)")
    inv = sub.add_parser("inventory", help="regenerate rules/observed/skypilot-<version>.json")
    inv.add_argument("--version", choices=sorted(venvs.VERSIONS), action="append")
    inv.add_argument("--scenario", action="append", help="only these scenarios (repeatable)")
    inv.add_argument(
        "--no-necessity", action="store_true", help="skip the necessity runs (admin runs only)"
    )
    inv.add_argument("--output-dir", type=Path, default=None)
    inv.add_argument(
        "--resume",
        action="store_true",
        help="keep verdicts of an interrupted regeneration (complete: false) and add the rest",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the process exit code."""
    args = _parser().parse_args(argv)
    # SIGTERM/SIGHUP become SystemExit, so the runner's finally blocks stop the SkyPilot API
    # server of the run in flight (installed before the lab's own handlers, which chain here).
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    try:
        if args.command == "build":
            found = ensure_lab_binaries()
            print(
                json.dumps({"kube-scheduler": str(found.kube_scheduler), "kwok": str(found.kwok)})
            )
        elif args.command == "venvs":
            for version in args.version or venvs.VERSIONS:
                print(venvs.ensure_venv(version))
        elif args.command == "run":
            return _run_one(args.operation, args.version, args.admin, yaml.safe_load(args.config))
        elif args.command == "inventory":
            from tests.skypilot import inventory

            for version in args.version or venvs.VERSIONS:
                path = inventory.regenerate(
                    version,
                    scenarios=args.scenario,
                    necessity=not args.no_necessity,
                    output_dir=args.output_dir,
                    resume=args.resume,
                )
                print(path)
    except (BuildError, venvs.VenvError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _run_one(operation: str, version: str, admin: bool, config: Any) -> int:
    from tests.skypilot.lab import Lab
    from tests.skypilot.runner import OPERATIONS, run_operation

    if operation not in OPERATIONS:
        print(f"error: unknown operation {operation!r}; known: {', '.join(OPERATIONS)}")
        return 2
    with tempfile.TemporaryDirectory(prefix="skylab-") as tmp, Lab(tmp) as lab:
        print(f"lab started in {lab.started_seconds:.1f}s", file=sys.stderr)
        who = lab.identity("sky-user", namespace=lab.fresh_namespace(), cluster_admin=admin)
        run = run_operation(lab, version, OPERATIONS[operation], who, config or {})
    record = dataclasses.asdict(run)
    record["outcome"] = run.outcome.value
    print(json.dumps(record, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

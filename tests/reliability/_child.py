"""Run many bad inputs through skycheck in one child process with memory and CPU limits.

``python -m tests.reliability._child`` reads a JSON list of jobs on stdin and prints one JSON
line per job. Inputs that could blow up (alias bombs, deep nesting, endless files) run here,
not in pytest's process: a regression then fails its test (a MemoryError is an internal
error, exit 3; the CPU limit kills the child) instead of taking the test run down with it.

A job is ``{"args": [...]}`` (a CLI run) or ``{"rules": PATH}`` (``load_catalogue`` on a
directory holding PATH as core.yaml). The answer is ``{"code", "out", "err"}`` for a CLI run
and ``{"message", "crash"}`` for a catalogue load.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
from pathlib import Path

MEMORY_LIMIT = 2 << 30  # bytes of address space
CPU_SECONDS = 60


def _rules(path: str) -> dict[str, str | None]:
    from skycheck import catalogue
    from skycheck.errors import InputError

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(path, Path(tmp) / "core.yaml")
        try:
            catalogue.load_catalogue(Path(tmp))
        except InputError as exc:
            return {"message": exc.one_line(), "crash": None}
        except Exception as exc:
            return {"message": None, "crash": repr(exc)[:500]}
    return {"message": None, "crash": None}


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    # No SkyPilot config: an empty HOME (a missing $SKYPILOT_CONFIG file is an error).
    os.environ.pop("SKYPILOT_CONFIG", None)
    os.environ.pop("SKYPILOT_GLOBAL_CONFIG", None)
    os.environ["HOME"] = tempfile.mkdtemp(prefix="skycheck-child-home-")
    os.environ.pop("KUBECONFIG", None)
    from tests.reliability._util import invoke

    for job in json.load(sys.stdin):
        if "rules" in job:
            answer: dict[str, object] = _rules(job["rules"])
        else:
            outcome = invoke(job["args"])
            answer = {"code": outcome.code, "out": outcome.out, "err": outcome.err}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()

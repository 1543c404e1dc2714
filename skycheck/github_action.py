"""The GitHub Action's check step (action.yml): inputs in, one check, outputs and a summary out.

The composite action maps each input to an ``INPUT_<NAME>`` environment variable (upper
case, ``-`` as ``_``; composite actions get no such variables by themselves) and runs
``python -m skycheck.github_action`` in the workspace. One check is made; its reports are
rendered twice, in the format asked for (the log, or ``output-file``) and as Markdown for
the job's step summary, so the summary never disagrees with the gate. Outputs go to
``$GITHUB_OUTPUT``: ``verdict`` (pass, fail, unknown, or error for a usage or input error),
``exit-code`` and ``report`` (the report's path, or empty when it went to the log). The
process exits with skycheck's exit code, which fails the step on 1, 2 or 3.

A kubeconfig given as the ``kubeconfig`` input (from a secret) is written to a file only
its owner may read, under ``$RUNNER_TEMP``, used through ``--kubeconfig`` and removed
afterwards; it is never printed.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from skycheck.errors import ExitCode, SkycheckError, UsageError

# Inputs holding one value each, and the flag each becomes.
_SINGLE = {
    "sa": "--sa",
    "namespace": "-n",
    "fail-on": "--fail-on",
    "output": "-o",
    "output-file": "--output-file",
    "skypilot-version": "--skypilot-version",
}
SUMMARY_TITLE = "## skycheck: SkyPilot RBAC check"


def read_input(environ: Mapping[str, str], name: str) -> str:
    """The input ``name`` as the action's step passes it (stripped; empty when unset)."""
    return environ.get(f"INPUT_{name.upper().replace('-', '_')}", "").strip()


def _words(value: str, name: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise UsageError(f"input {name}: {exc}") from None


def check_args(environ: Mapping[str, str], kubeconfig: str | None) -> list[str]:
    """The check's command line from the inputs (``args`` last, as written)."""
    args: list[str] = []
    for path in _words(read_input(environ, "manifests"), "manifests"):
        args += ["--manifests", path]
    for name, flag in _SINGLE.items():
        value = read_input(environ, name)
        if value:
            args += [flag, value]
    for feature in _words(read_input(environ, "features").replace(",", " "), "features"):
        args += ["--all-features"] if feature == "all" else ["-f", feature]
    for context in _words(read_input(environ, "context"), "context"):
        args += ["--context", context]
    if kubeconfig is not None:
        args += ["--kubeconfig", kubeconfig]
    return args + _words(read_input(environ, "args"), "args")


def _write_kubeconfig(content: str, directory: str | None) -> str:
    descriptor, path = tempfile.mkstemp(prefix="skycheck-kubeconfig-", dir=directory)
    with os.fdopen(descriptor, "w") as handle:  # mkstemp makes it 0600
        handle.write(content)
    return path


def _set_outputs(path: str | None, outputs: Mapping[str, str]) -> None:
    if not path:
        return
    with open(path, "a", encoding="utf-8") as handle:
        for name, value in outputs.items():
            handle.write(f"{name}={value}\n")  # one-line values: no delimiter needed


def _append_summary(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")


def run(environ: Mapping[str, str]) -> int:
    """Run the check the inputs describe; write outputs and summary; return the exit code."""
    from skycheck.cli import parse_check_args
    from skycheck.errorline import fail, internal_error
    from skycheck.models import gate_verdict
    from skycheck.render import OutputFormat, render
    from skycheck.request import collect, finish
    from skycheck.secrets import redact

    content = environ.get("INPUT_KUBECONFIG", "")
    kubeconfig = _write_kubeconfig(content, environ.get("RUNNER_TEMP")) if content else None
    report_file = read_input(environ, "output-file")
    summary: str | None = None
    try:
        request = parse_check_args(check_args(environ, kubeconfig), "skycheck (action)")
        outcome = collect(request)
        code = finish(request, outcome)
        verdict = gate_verdict(list(outcome.reports)).value
        summary = redact(
            render(
                outcome.payload,
                OutputFormat.MARKDOWN,
                fix_path=str(request.fix_path) if request.fix_path else None,
                fix_per_context=outcome.per_context,
                summary=request.audits_subjects,
            )
        )
    except SkycheckError as exc:
        code = fail(exc.one_line(), exc.exit_code)
        verdict = "error" if code == ExitCode.USAGE else "unknown"
        summary = f"{SUMMARY_TITLE}\n\n**[ERROR]** {redact(exc.one_line())} (exit {code})\n"
        report_file = ""
    except Exception as exc:  # a bug: one redacted line, never a traceback with locals
        code = internal_error(exc, debug=False)
        verdict = "unknown"
        summary = f"{SUMMARY_TITLE}\n\n**[ERROR]** internal error (exit {code})\n"
        report_file = ""
    finally:
        if kubeconfig is not None:
            Path(kubeconfig).unlink(missing_ok=True)
    _set_outputs(
        environ.get("GITHUB_OUTPUT"),
        {"verdict": verdict, "exit-code": str(code), "report": report_file},
    )
    if read_input(environ, "summary").lower() != "false":
        _append_summary(environ.get("GITHUB_STEP_SUMMARY"), summary)
    return code


def main() -> None:
    """``python -m skycheck.github_action`` (the action's check step)."""
    sys.exit(run(os.environ))


if __name__ == "__main__":
    main()

"""The command line's fast path: a plain check parsed without building typer's command.

Importing typer and letting it build its command (click parameters, typer's coercion,
which imports pydantic) costs about 0.1 s, more than the rest of a small offline check.
``parse`` reads the common shape of a check, ``--flag VALUE``, ``--flag=VALUE``,
``-n VALUE`` and boolean flags, into the same ``CheckRequest`` the typer command builds,
and returns None for everything else: ``--help``, ``--version``, shell completion,
subcommands, unknown flags, a missing value, a value that starts with ``-``, a number it
would have to guess about. Those go to typer (``skycheck.cli``), which either accepts them
or writes its own error, so the fast path never changes what the command line means; it
only skips typer when the answer is certain. ``tests/unit/test_fastargv.py`` proves both
paths give identical requests for a large set of command lines, and that ``OPTIONS``
matches the typer command's parameters.

``main`` is the console entry point: a plain check runs without importing typer (or rich,
unless the table is printed); anything else is handed to ``skycheck.cli.run``.
"""

from __future__ import annotations

import gc
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from skycheck.errors import ExitCode, SkycheckError, UsageError

if TYPE_CHECKING:
    from skycheck.request import CheckRequest

OUTPUTS = ("table", "json", "yaml", "junit", "sarif", "markdown", "github", "prometheus")
FAIL_ON = ("required", "optional", "never")
PROFILES = ("skypilot", "docs")

# How a value is read: str, path, float, int (one value, the last one given wins, as in
# click), many (repeatable, in order), flag (no value).
STR, PATH, FLOAT, INT, MANY, FLAG = "str", "path", "float", "int", "many", "flag"

# The check command's options: flag -> (parameter name, kind). Must match the typer
# command in skycheck/cli.py (a unit test compares them).
OPTIONS: dict[str, tuple[str, str]] = {
    "--sa": ("sa", STR),
    "-n": ("namespace", STR),
    "--namespace": ("namespace", STR),
    "--as": ("as_user", STR),
    "--as-group": ("as_groups", MANY),
    "--context": ("context", MANY),
    "--all-contexts": ("all_contexts", FLAG),
    "--kubeconfig": ("kubeconfig", STR),
    "-f": ("feature", MANY),
    "--feature": ("feature", MANY),
    "--all-features": ("all_features", FLAG),
    "-o": ("output", STR),
    "--output": ("output", STR),
    "--output-file": ("output_file", PATH),
    "--fix": ("fix", PATH),
    "--fail-on": ("fail_on", STR),
    "--profile": ("profile", STR),
    "--skypilot-version": ("skypilot_version", STR),
    "--remote-identity": ("remote_identity", STR),
    "--manifests": ("manifests", MANY),
    "--sky-config": ("sky_config", PATH),
    "--no-sky-config": ("no_sky_config", FLAG),
    "--explain": ("explain", FLAG),
    "--timeout": ("timeout", FLOAT),
    "--request-timeout": ("request_timeout", FLOAT),
    "--max-inflight": ("max_inflight", INT),
    "--debug": ("debug", FLAG),
}

# Plain decimal numbers only: anything else (signs, exponents, "inf", "1_0", spaces) is
# left to typer, whose answer is then the only one.
_FLOAT = re.compile(r"[0-9]{1,9}(\.[0-9]{0,9})?|\.[0-9]{1,9}")
_INT = re.compile(r"[0-9]{1,9}")
# typer reads shell completion requests from this variable (typer's _completion_shared).
COMPLETION_VARIABLE = "_SKYCHECK_COMPLETE"


def choice(value: str, allowed: tuple[str, ...], flag: str) -> str:
    """``value`` if it is one of ``allowed``, else a usage error naming ``flag``."""
    if value not in allowed:
        raise UsageError(f"{flag} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def build_request(
    *,
    sa: str | None = None,
    namespace: str | None = None,
    as_user: str | None = None,
    as_groups: list[str] | tuple[str, ...] | None = None,
    context: list[str] | tuple[str, ...] | None = None,
    all_contexts: bool = False,
    kubeconfig: str | None = None,
    feature: list[str] | tuple[str, ...] | None = None,
    all_features: bool = False,
    output: str = "table",
    output_file: Path | None = None,
    fix: Path | None = None,
    fail_on: str = "required",
    profile: str = "skypilot",
    skypilot_version: str | None = None,
    remote_identity: str | None = None,
    manifests: list[str] | tuple[str, ...] | None = None,
    sky_config: Path | None = None,
    no_sky_config: bool = False,
    explain: bool = False,
    timeout: float = 60.0,
    request_timeout: float = 10.0,
    max_inflight: int = 16,
    debug: bool = False,
) -> CheckRequest:
    """The check's options (typer's parameter names and defaults) as a ``CheckRequest``."""
    from skycheck.request import CheckRequest

    return CheckRequest(
        sa=sa,
        namespace=namespace,
        as_user=as_user,
        as_groups=tuple(as_groups or ()),
        contexts=tuple(context or ()),
        all_contexts=all_contexts,
        kubeconfig=kubeconfig,
        features=tuple(feature or ()),
        all_features=all_features,
        output=choice(output, OUTPUTS, "--output"),
        output_file=output_file,
        fix_path=fix,
        fail_on=choice(fail_on, FAIL_ON, "--fail-on"),
        profile=choice(profile, PROFILES, "--profile"),
        skypilot_version=skypilot_version,
        remote_identity=remote_identity,
        manifests=tuple(manifests or ()),
        sky_config=sky_config,
        no_sky_config=no_sky_config,
        explain=explain,
        timeout=timeout,
        request_timeout=request_timeout,
        max_inflight=max_inflight,
        debug=debug,
    )


def parse_options(argv: list[str]) -> dict[str, Any] | None:
    """The check's options from ``argv`` by parameter name, or None when typer must decide."""
    values: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        flag, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        spec = OPTIONS.get(flag)
        if spec is None:
            return None  # --help, --version, a subcommand, a typo, "--", "-nNS": typer's
        name, kind = spec
        if kind == FLAG:
            if eq:
                return None
            values[name] = True
            continue
        if eq:
            raw = inline
        elif i < len(argv):
            raw = argv[i]
            i += 1
        else:
            return None
        if (raw.startswith("-") and raw != "-") or raw == "":
            return None  # "-" is standard input; "-x" may be a flag someone forgot a value for
        if kind == MANY:
            values.setdefault(name, []).append(raw)
        elif kind == STR:
            values[name] = raw
        elif kind == PATH:
            values[name] = Path(raw)
        elif kind == FLOAT:
            if not _FLOAT.fullmatch(raw):
                return None
            values[name] = float(raw)
        elif not _INT.fullmatch(raw):
            return None
        else:
            values[name] = int(raw)
    return values


def parse(argv: list[str], environ: dict[str, str] | None = None) -> CheckRequest | None:
    """A plain check's ``CheckRequest``, or None when typer must parse ``argv``.

    Raises ``UsageError`` for a value outside its choices, as the typer command does.
    """
    env = os.environ if environ is None else environ
    if COMPLETION_VARIABLE in env:
        return None
    values = parse_options(argv)
    return None if values is None else build_request(**values)


def quiet_root_logger(debug: bool) -> None:
    """The kubernetes client logs a failing exec plugin on the root logger; skycheck reports
    the failure itself, in one line."""
    import logging

    if not debug and not logging.getLogger().handlers:
        logging.getLogger().addHandler(logging.NullHandler())


def fail(message: str, code: int) -> int:
    """Write one error line to stderr and return ``code``."""
    from skycheck.secrets import redact

    # Messages quote names from input files: escape control and bidi characters so a
    # manifest cannot move the cursor, recolour or reorder the terminal line.
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in redact(message))
    sys.stderr.write(f"skycheck: error: {line}\n")
    return code


def internal_error(exc: BaseException, debug: bool) -> int:
    """A bug: one redacted line (a traceback without locals only with --debug), exit 3."""
    from skycheck.secrets import redact

    if debug:
        import traceback

        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(redact(text))
    # Redact before cutting to length: a cut secret no longer matches its redaction.
    first = redact(str(exc)).splitlines()[0] if str(exc) else ""
    return fail(f"internal error: {type(exc).__name__}: {first}"[:400], ExitCode.UNDECIDED)


def run_request(request: CheckRequest) -> int:
    """Execute a parsed check and map every failure to its exit code, as ``cli.run`` does."""
    try:
        from skycheck.request import execute

        return execute(request)
    except SkycheckError as exc:
        return fail(exc.one_line(), exc.exit_code)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as exc:  # a bug: never a traceback with locals, never a secret
        return internal_error(exc, request.debug)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code: the fast path when it applies, else typer."""
    args = list(sys.argv[1:] if argv is None else argv)
    # No cyclic garbage collection while the command line is read: reading it imports what a
    # check needs (skycheck.request and everything behind it), and the collections those
    # allocations trigger walk every object the imports made while freeing nothing (about 20
    # collections, a few ms of a 0.07 s run). Restored below for everything but an offline
    # run, and afterwards for callers in a longer-lived process (tests).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        request = parse(args)
        if request is not None and request.manifests:
            # A short offline run over a parsed input makes no reference cycles worth
            # collecting either, but each burst of allocations would walk every object it made
            # (0.025 s at 10,000 objects). A decision for the entry point, not for the
            # library (skycheck.manifests only pauses it while parsing).
            return run_request(request)
    except SkycheckError as exc:
        return fail(exc.one_line(), exc.exit_code)
    finally:
        if was_enabled:
            gc.enable()
    if request is None:
        from skycheck.cli import run_typer

        return run_typer(args)
    quiet_root_logger(request.debug)  # offline mode never loads the kubernetes client
    return run_request(request)


def main(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry point (``skycheck``, ``kubectl-skycheck``, ``python -m skycheck``)."""
    code = run(argv)
    # The process ends here. Python's shutdown still runs a full garbage collection
    # (finalize_modules in CPython's Python/pylifecycle.c): it walks the 15,000 objects the
    # imports left, a few ms (a tenth of the docs example's CPU), to free a few hundred cyclic
    # leftovers the operating system reclaims anyway. Frozen objects are left out of every
    # later collection (gc.freeze). Nothing is lost: output goes through sys.stdout, which
    # shutdown flushes, files are written and closed by outfile.py before this, and Python
    # never promised finalizers for objects alive at exit (the data model's object.__del__).
    gc.freeze()
    sys.exit(code)

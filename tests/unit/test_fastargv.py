"""The command line's fast path gives typer's answer or none at all.

For a large set of command lines, ``fastargv.parse`` must either return exactly the
``CheckRequest`` the typer command builds, raise the same usage error, or decline (None);
it must never accept what typer refuses. It must also accept the plain checks people type,
or it would be no faster.
"""

from __future__ import annotations

import random
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import typer

from skycheck import cli, fastargv, request
from skycheck.errors import ExitCode, UsageError

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS_SA = ROOT / "tests" / "manifests" / "create-sky-sa.yaml"

# Values that are plain, odd (empty, dashes, spaces, unicode, '='), numbers in every spelling
# typer might read differently, and the words of other flags and subcommands.
VALUES = [
    "sky-sa",
    "default",
    "ns:sky",
    "json",
    "table",
    "yaml",
    "bogus",
    "optional",
    "never",
    "docs",
    "",
    "-",
    "-x",
    "--sa",
    "a b",
    "é",
    "x=y",
    "0",
    "5",
    "2.5",
    ".5",
    "5.",
    "1e3",
    "inf",
    "nan",
    "-1",
    "+3",
    "1_0",
    " 7",
    "0x10",
    "300",
    "257",
    "rules",
    "manifest",
    "/tmp/r.json",
    "~/x",
    "core",
    "--help",
]
EXTRA_TOKENS = [
    "--help",
    "-h",
    "--version",
    "--",
    "rules",
    "manifest",
    "-nsky",
    "-ojson",
    "--all-features=1",
    "--debug=",
    "--bogus",
    "-z",
    "--install-completion",
    "--show-completion",
    "--namespace=",
    "--timeout=5",
    "--sa=",
    "--sa=x=y",
]


def _typer_request(argv: list[str]) -> Any:
    """What the typer command makes of ``argv``: a CheckRequest, a usage error's message,
    or ('exit', code) when typer stops before a check (help, errors, subcommands)."""
    seen: list[request.CheckRequest] = []

    def capture(req: request.CheckRequest) -> int:
        seen.append(req)
        return 0

    original = request.execute
    request.execute = capture  # the command imports execute at call time
    try:
        try:
            result = cli.app(args=argv, prog_name="skycheck", standalone_mode=False)
        except UsageError as exc:
            return ("usage", str(exc))
        except typer.Exit as exc:
            if seen:
                return seen[0]
            return ("exit", exc.exit_code)
        except SystemExit as exc:
            return seen[0] if seen else ("exit", exc.code)
        except Exception as exc:  # click's usage errors, a subcommand's own errors
            return ("exit", type(exc).__name__)
        return seen[0] if seen else ("exit", result)
    finally:
        request.execute = original


def _fast(argv: list[str]) -> Any:
    try:
        return fastargv.parse(argv, environ={})
    except UsageError as exc:
        return ("usage", str(exc))


def _argvs(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    flags = list(fastargv.OPTIONS)
    out = []
    for _ in range(count):
        argv: list[str] = []
        for _ in range(rng.randint(0, 7)):
            roll = rng.random()
            if roll < 0.08:
                argv.append(rng.choice(EXTRA_TOKENS))
                continue
            flag = rng.choice(flags)
            kind = fastargv.OPTIONS[flag][1]
            if kind == fastargv.FLAG:
                argv.append(flag)
            elif roll < 0.3 and flag.startswith("--"):
                argv.append(f"{flag}={rng.choice(VALUES)}")
            elif roll < 0.95:
                argv += [flag, rng.choice(VALUES)]
            else:
                argv.append(flag)  # a missing value when last
        out.append(argv)
    return out


COMMON = [
    [],
    ["--sa", "sky-sa", "-n", "default"],
    ["--manifests", str(DOCS_SA), "--sa", "sky-sa", "-n", "default", "-o", "json"],
    ["--all-features", "--remote-identity", "SERVICE_ACCOUNT", "--sa", "sky-sa", "-n", "b"],
    ["--context", "a", "--context", "b", "-f", "ingress", "--feature=volumes", "--explain"],
    ["--as", "alice", "--as-group", "g1", "--as-group", "g2", "--fail-on", "optional"],
    ["--kubeconfig", "/tmp/kc", "--timeout", "5", "--request-timeout", "2.5"],
    ["--max-inflight", "4", "--output-file", "r.json", "--fix", "fix.yaml", "--debug"],
    ["--sky-config", "c.yaml", "--profile", "docs", "--skypilot-version", "0.14.1"],
    ["--all-contexts", "--no-sky-config", "-o", "sarif", "--manifests", "a", "--manifests", "-"],
    ["-n", "x", "-n", "y", "--output", "table", "-o", "github"],
]


@pytest.mark.parametrize("argv", COMMON, ids=lambda a: " ".join(a)[:60] or "no-flags")
def test_the_common_checks_take_the_fast_path_with_typer_s_request(argv):
    fast = _fast(argv)
    assert isinstance(fast, request.CheckRequest)
    assert fast == _typer_request(argv)


def test_many_command_lines_give_typer_s_answer_or_none():
    accepted = declined = usage = 0
    for argv in _argvs(1500, seed=14):
        fast = _fast(argv)
        if fast is None:
            declined += 1
            continue
        expected = _typer_request(argv)
        assert fast == expected, argv
        if isinstance(fast, tuple):
            usage += 1
        else:
            accepted += 1
    # The set exercises all three outcomes, so the comparison above means something.
    assert accepted > 300 and declined > 300 and usage > 50, (accepted, declined, usage)


def _kind(annotation: Any) -> str:
    """The fast path's kind for a parameter of the typer command, from its type."""
    base = typing.get_args(annotation)[0]  # Annotated[T, typer.Option(...)]
    args = [a for a in typing.get_args(base) if a is not type(None)] or [base]
    kinds = {bool: fastargv.FLAG, float: fastargv.FLOAT, int: fastargv.INT, Path: fastargv.PATH}
    if typing.get_origin(args[0]) is list:
        return fastargv.MANY
    return kinds.get(args[0], fastargv.STR)


def test_options_match_the_typer_command():
    hints = typing.get_type_hints(cli.check, include_extras=True)
    command = typer.main.get_command(cli.app)
    table: dict[str, tuple[str, str]] = {}
    for param in command.params:
        if param.name in ("version", "install_completion", "show_completion"):
            continue  # eager: always typer's
        for opt in param.opts:
            table[opt] = (str(param.name), _kind(hints[str(param.name)]))
    assert table == fastargv.OPTIONS


def test_help_version_completion_and_subcommands_go_to_typer():
    for argv in (["--help"], ["-h"], ["--version"], ["rules"], ["manifest", "--sa", "x"]):
        assert fastargv.parse(argv, environ={}) is None
    assert fastargv.parse(["--sa", "x"], environ={"_SKYCHECK_COMPLETE": "bash_complete"}) is None


def test_a_bad_choice_is_one_line_and_exit_2(capsys):
    assert cli.run(["--sa", "x", "-o", "nope"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert (
        err
        == "skycheck: error: --output must be one of "
        + ", ".join(fastargv.OUTPUTS)
        + ", not 'nope'\n"
    )


def test_a_plain_offline_check_imports_neither_typer_nor_rich(tmp_path):
    code = (
        "import sys; from skycheck.fastargv import run; "
        f"code = run(['--manifests', {str(DOCS_SA)!r}, '--sa', 'sky-sa', '-n', 'default', "
        f"'-o', 'json', '--output-file', {str(tmp_path / 'r.json')!r}]); "
        "print(code, 'typer' in sys.modules, 'rich' in sys.modules, 'kubernetes' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["0", "False", "False", "False"]
    assert '"verdict": "pass"' in (tmp_path / "r.json").read_text()


def test_an_offline_run_leaves_the_garbage_collector_as_it_found_it(tmp_path, capsys):
    import gc

    assert gc.isenabled()
    argv = ["--manifests", str(DOCS_SA), "--sa", "sky-sa", "-n", "default", "-o", "json"]
    assert fastargv.run(argv) == 0
    assert '"verdict": "pass"' in capsys.readouterr().out
    assert gc.isenabled()


@pytest.mark.parametrize(
    ("argv", "collecting"),
    [
        (["--manifests", str(DOCS_SA), "--sa", "sky-sa", "-o", "json"], False),  # offline
        (["--sa", "sky-sa", "-o", "json"], True),  # live: collected as usual
        (["--version"], True),  # typer
    ],
)
def test_the_garbage_collector_is_paused_only_for_an_offline_run(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], collecting: bool
) -> None:
    import gc

    seen: list[bool] = []

    def record(*_: Any) -> int:
        seen.append(gc.isenabled())
        return 0

    monkeypatch.setattr(fastargv, "run_request", record)
    monkeypatch.setattr(cli, "run_typer", record)
    assert gc.isenabled()
    assert fastargv.run(argv) == 0
    assert seen == [collecting]
    assert gc.isenabled()


def test_the_entry_point_freezes_the_heap_and_still_writes_everything(tmp_path):
    """``main`` leaves what is alive out of the collection at shutdown (gc.freeze); the report
    on stdout, the fix file and the exit code are all there."""
    fix = tmp_path / "fix.yaml"
    code = (
        "import atexit, gc, sys; from skycheck.fastargv import main; "
        "atexit.register(lambda: sys.stderr.write(f'frozen {gc.get_freeze_count() > 0}')); "
        f"main(['--manifests', {str(DOCS_SA)!r}, '--sa', 'sky-sa', '-n', 'default', "
        f"'--all-features', '-o', 'json', '--fix', {str(fix)!r}])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stderr == "frozen True"
    assert out.returncode == 1  # the docs' grants lack what the optional features need
    assert out.stdout.rstrip().endswith("}") and '"verdict": "fail"' in out.stdout
    assert "kind: ClusterRole" in fix.read_text()

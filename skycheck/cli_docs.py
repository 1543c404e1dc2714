"""The CLI reference page (docs/cli.md), generated from the typer app's help."""

from __future__ import annotations

import os


def _help(args: list[str]) -> str:
    from typer.testing import CliRunner

    from skycheck.cli import app

    runner = CliRunner()
    # A fixed width and no colour keep the page identical on every machine.
    env = {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        result = runner.invoke(app, [*args, "--help"], prog_name="skycheck", env=env)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return result.output.rstrip() + "\n"


def cli_reference() -> str:
    parts = [
        "# CLI reference",
        "",
        "<!-- Generated from the typer app by `python scripts/gen_docs.py`; do not edit. -->",
        "",
        "## skycheck",
        "",
        "```text",
        _help([]).rstrip(),
        "```",
        "",
    ]
    for command in ("rules", "manifest"):
        parts += [f"## skycheck {command}", "", "```text", _help([command]).rstrip(), "```", ""]
    return "\n".join(parts)

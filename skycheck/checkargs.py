"""The check command's flags, read by the typer app's own parser, as a ``CheckRequest``.

``skycheck watch`` and the GitHub Action (``skycheck.github_action``) take the same flags as
the check itself. Parsing them with the check command's click parameters keeps one
definition of every flag, its type, default and errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from skycheck.errors import UsageError

if TYPE_CHECKING:
    from skycheck.request import CheckRequest

# Parameters of the check callback that are not part of a request.
_NOT_REQUEST = frozenset({"version"})


def parse_check_args(args: list[str], command: str = "skycheck") -> CheckRequest:
    """``args`` (check flags only) as the request the check command would build.

    A bad flag or value raises ``UsageError`` with click's message (exit 2).
    """
    import typer.main
    from typer._click.exceptions import UsageError as ClickUsageError

    from skycheck import cli, fastargv

    group = typer.main.get_command(cli.app)
    try:
        # The group's own parameters are the check callback's; parse only those.
        ctx = group.make_context(command, list(args), resilient_parsing=False)
    except ClickUsageError as exc:
        raise UsageError(" ".join(exc.format_message().split())) from None
    leftover = [*getattr(ctx, "_protected_args", ()), *ctx.args]
    if leftover:
        raise UsageError(f"unexpected argument {leftover[0]!r} (only check flags belong here)")
    params = {k: v for k, v in ctx.params.items() if k not in _NOT_REQUEST}
    return fastargv.build_request(**params)

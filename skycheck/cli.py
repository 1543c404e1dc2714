"""Command line: flags -> a check request -> reviewer -> renderer -> exit code.

No domain logic lives here. Every ``SkycheckError`` is caught once, in
``run``, and printed as one line; anything unexpected is an internal error,
printed as one redacted line (a traceback without locals only with --debug).
Heavy imports (kubernetes, rich tables) happen inside the commands so that
``skycheck --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from skycheck import __version__, fastargv
from skycheck.errors import ExitCode, SkycheckError
from skycheck.fastargv import OUTPUTS, choice

app = typer.Typer(
    name="skycheck",
    help="Check that a Kubernetes identity holds every permission SkyPilot needs.",
    add_completion=True,
    no_args_is_help=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"skycheck {__version__}")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def check(
    ctx: typer.Context,
    sa: Annotated[
        str | None,
        typer.Option("--sa", metavar="NAME", help="Check this service account (NAME, or NS:NAME)."),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "-n",
            "--namespace",
            metavar="NS",
            help="SkyPilot namespace (default: the context's, else default).",
        ),
    ] = None,
    as_user: Annotated[
        str | None,
        typer.Option("--as", metavar="USER", help="Check this user instead of the caller."),
    ] = None,
    as_groups: Annotated[
        list[str] | None,
        typer.Option("--as-group", metavar="GROUP", help="Group of --as (repeatable)."),
    ] = None,
    context: Annotated[
        list[str] | None,
        typer.Option("--context", metavar="CONTEXT", help="Kubeconfig context (repeatable)."),
    ] = None,
    all_contexts: Annotated[
        bool, typer.Option("--all-contexts", help="Check every kubeconfig context.")
    ] = False,
    kubeconfig: Annotated[
        str | None,
        typer.Option(
            "--kubeconfig", metavar="PATH", help="Kubeconfig file (default: $KUBECONFIG)."
        ),
    ] = None,
    feature: Annotated[
        list[str] | None,
        typer.Option(
            "-f",
            "--feature",
            metavar="FEATURE",
            help="Require this feature besides core (repeatable).",
        ),
    ] = None,
    all_features: Annotated[
        bool, typer.Option("--all-features", help="Check and require every feature.")
    ] = False,
    output: Annotated[
        str,
        typer.Option(
            "-o", "--output", metavar="FORMAT", help=f"Output format: {', '.join(OUTPUTS)}."
        ),
    ] = "table",
    output_file: Annotated[
        Path | None,
        typer.Option("--output-file", metavar="PATH", help="Write the report here, not stdout."),
    ] = None,
    fix: Annotated[
        Path | None,
        typer.Option("--fix", metavar="PATH", help="Write a manifest that grants what is missing."),
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option(
            "--fail-on", metavar="WHEN", help="Which gaps fail: required, optional, never."
        ),
    ] = "required",
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            metavar="NAME",
            help="What gates: skypilot (what SkyPilot needs) or docs (also the docs' minimum).",
        ),
    ] = "skypilot",
    skypilot_version: Annotated[
        str | None,
        typer.Option(
            "--skypilot-version",
            metavar="VERSION",
            help="Check against this proven SkyPilot version (default: installed, else newest).",
        ),
    ] = None,
    remote_identity: Annotated[
        str | None,
        typer.Option(
            "--remote-identity",
            metavar="VALUE",
            help="SkyPilot's remote_identity for this launch (default: from the setup).",
        ),
    ] = None,
    manifests: Annotated[
        list[str] | None,
        typer.Option(
            "--manifests", metavar="PATH", help="Evaluate RBAC manifests offline (file, dir or -)."
        ),
    ] = None,
    sky_config: Annotated[
        Path | None,
        typer.Option("--sky-config", metavar="PATH", help="SkyPilot config (~/.sky/config.yaml)."),
    ] = None,
    no_sky_config: Annotated[
        bool, typer.Option("--no-sky-config", help="Ignore ~/.sky/config.yaml.")
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Print what was derived from the setup and why.")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", help="Seconds for the whole run (live mode)."),
    ] = 60.0,
    request_timeout: Annotated[
        float, typer.Option("--request-timeout", metavar="SECONDS", help="Seconds per API request.")
    ] = 10.0,
    max_inflight: Annotated[
        int, typer.Option("--max-inflight", metavar="N", help="Concurrent requests per API server.")
    ] = 16,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show a traceback (no locals) on internal errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Check that an identity may do everything SkyPilot needs (default command)."""
    if ctx.invoked_subcommand is not None:
        return
    from skycheck.request import execute

    # The same builder as the fast path (skycheck/fastargv.py), so both give one request.
    request = fastargv.build_request(
        sa=sa,
        namespace=namespace,
        as_user=as_user,
        as_groups=as_groups,
        context=context,
        all_contexts=all_contexts,
        kubeconfig=kubeconfig,
        feature=feature,
        all_features=all_features,
        output=output,
        output_file=output_file,
        fix=fix,
        fail_on=fail_on,
        profile=profile,
        skypilot_version=skypilot_version,
        remote_identity=remote_identity,
        manifests=manifests,
        sky_config=sky_config,
        no_sky_config=no_sky_config,
        explain=explain,
        timeout=timeout,
        request_timeout=request_timeout,
        max_inflight=max_inflight,
        debug=debug,
    )
    raise typer.Exit(execute(request))


@app.command("rules")
def rules_command(
    output: Annotated[
        str, typer.Option("-o", "--output", metavar="FORMAT", help="table or json.")
    ] = "table",
    feature: Annotated[
        list[str] | None,
        typer.Option("-f", "--feature", metavar="FEATURE", help="Only these features."),
    ] = None,
) -> None:
    """List the rule catalogue: every permission SkyPilot needs, by feature."""
    from skycheck.catalogue import load_catalogue
    from skycheck.rules_view import render_catalogue

    catalogue = load_catalogue()
    for name in feature or ():
        catalogue.feature(name)
    typer.echo(
        render_catalogue(
            catalogue, choice(output, ("table", "json"), "--output"), tuple(feature or ())
        ),
        nl=False,
    )


@app.command("manifest")
def manifest_command(
    sa: Annotated[
        str, typer.Option("--sa", metavar="NAME", help="Service account name (NAME or NS:NAME).")
    ],
    namespace: Annotated[
        str, typer.Option("-n", "--namespace", metavar="NS", help="SkyPilot namespace.")
    ] = "default",
    feature: Annotated[
        list[str] | None,
        typer.Option("-f", "--feature", metavar="FEATURE", help="Add this feature to core."),
    ] = None,
    all_features: Annotated[
        bool, typer.Option("--all-features", help="Every feature of the catalogue.")
    ] = False,
    output_file: Annotated[
        Path | None,
        typer.Option("--output-file", metavar="PATH", help="Write here instead of stdout."),
    ] = None,
) -> None:
    """Write a least-privilege manifest for a new SkyPilot service account."""
    from skycheck.catalogue import bind, load_catalogue, select_features
    from skycheck.fixit import build_manifest
    from skycheck.identity import service_account

    catalogue = load_catalogue()
    features, _ = select_features(catalogue, tuple(feature or ()), all_features)
    if not feature and not all_features:
        features = ("core",)
    subject = service_account(sa, namespace)
    reqs = bind(catalogue, subject.namespace or namespace, features, features)
    from skycheck.fixit import CREATABLE_NAMESPACES

    fixed = sorted(
        {r.namespace for r in catalogue.rules if r.feature in features and r.scope.value == "fixed"}
        & CREATABLE_NAMESPACES
    )
    header = (
        f"# SkyPilot service account {subject.namespace}/{subject.name}, made by skycheck.\n"
        f"# Features: {', '.join(features)}. Least privilege: concrete verbs only.\n"
        f"# Configure SkyPilot with kubernetes.remote_identity: {subject.name}\n"
    )
    text = (
        build_manifest(
            subject, reqs, create_namespaces=fixed, include_service_account=True, header=header
        )
        or ""
    )
    from skycheck.fixit import escalation_routes, escalation_warning

    warning = escalation_warning(escalation_routes(reqs))
    if warning:
        sys.stderr.write(f"skycheck: warning: {warning}\n")
    if output_file is not None:
        from skycheck.outfile import write_text

        write_text(output_file, text, "--output-file")
    else:
        typer.echo(text, nl=False)


@app.command(
    "watch",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def watch_command(
    ctx: typer.Context,
    interval: Annotated[
        float, typer.Option("--interval", metavar="SECONDS", help="Seconds between checks.")
    ] = 300.0,
    port: Annotated[
        int, typer.Option("--port", metavar="PORT", help="Serve /metrics on this port.")
    ] = 9090,
    address: Annotated[
        str, typer.Option("--address", metavar="ADDR", help="Listen on this address.")
    ] = "0.0.0.0",
) -> None:
    """Re-check on an interval and serve Prometheus metrics on /metrics (check flags follow)."""
    from skycheck.checkargs import parse_check_args
    from skycheck.watch import serve

    request = parse_check_args(list(ctx.args), "skycheck watch")
    raise typer.Exit(serve(request, interval=interval, port=port, address=address))


_fail = fastargv.fail


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (tests call this): the fast path for a plain
    check (skycheck/fastargv.py), typer for everything else."""
    return fastargv.run(argv)


def run_typer(args: list[str]) -> int:
    """Parse ``args`` with typer and run the command they name."""
    # typer vendors click (typer._click); name its exceptions through typer's public API
    # where it has them, so the CLI does not depend on which click is underneath.
    from typer import Abort, Exit
    from typer._click.exceptions import UsageError as ClickUsageError

    debug = "--debug" in args
    fastargv.quiet_root_logger(debug)
    try:
        # Without standalone mode click returns the code of typer.Exit instead of exiting.
        result = app(args=args, prog_name="skycheck", standalone_mode=False)
        return int(result) if isinstance(result, int) else ExitCode.OK
    except SystemExit as exc:  # typer.Exit is translated to SystemExit by click
        return int(exc.code or 0) if isinstance(exc.code, int | None) else ExitCode.USAGE
    except Exit as exc:
        return int(exc.exit_code)
    except SkycheckError as exc:
        return _fail(exc.one_line(), exc.exit_code)
    except ClickUsageError as exc:
        return _fail(" ".join(exc.format_message().split()), ExitCode.USAGE)
    except Abort:
        return _fail("interrupted", 130)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # a bug: never a traceback with locals, never a secret
        return fastargv.internal_error(exc, debug)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI and exit (the console scripts use ``skycheck.fastargv.main``)."""
    sys.exit(run(argv))

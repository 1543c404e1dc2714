"""Command line: flags -> a check request -> reviewer -> renderer -> exit code.

The console entry point (``skycheck``, ``kubectl-skycheck``, ``python -m skycheck``) is
``main``; typer alone reads the command line. No domain logic lives here. Every
``SkycheckError`` is caught once, in ``run``, and printed as one line; anything unexpected
is an internal error, printed as one redacted line (a traceback without locals only with
--debug). Heavy imports (kubernetes, rich tables) happen inside the commands so that
``skycheck --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from skycheck import __version__
from skycheck.errorline import fail, internal_error
from skycheck.errors import ExitCode, SkycheckError, UsageError

if TYPE_CHECKING:
    from skycheck.request import CheckRequest

OUTPUTS = ("table", "json", "yaml", "junit", "sarif", "markdown", "github", "prometheus")
FAIL_ON = ("required", "optional", "never")
PROFILES = ("skypilot", "docs")
RISKS = ("critical", "high", "medium", "low")

app = typer.Typer(
    name="skycheck",
    help="Check that a Kubernetes identity holds every permission SkyPilot needs.",
    add_completion=True,
    no_args_is_help=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def choice(value: str, allowed: tuple[str, ...], flag: str) -> str:
    """``value`` if it is one of ``allowed``, else a usage error naming ``flag``."""
    if value not in allowed:
        raise UsageError(f"{flag} must be one of {', '.join(allowed)}, not {value!r}")
    return value


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
            help="Check against this SkyPilot version, latest or nightly (default: installed).",
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
    excess: Annotated[
        bool,
        typer.Option("--excess", help="Also report what the identity holds beyond the need."),
    ] = False,
    fail_on_excess: Annotated[
        str | None,
        typer.Option(
            "--fail-on-excess",
            metavar="LEVEL",
            help="Excess at or above LEVEL fails: critical, high, medium, low (implies --excess).",
        ),
    ] = None,
    least_privilege: Annotated[
        Path | None,
        typer.Option(
            "--least-privilege",
            metavar="PATH",
            help="Write the least-privilege manifest for the need (implies --excess).",
        ),
    ] = None,
    all_subjects: Annotated[
        bool,
        typer.Option(
            "--all-subjects",
            help="Audit every subject the bindings name that can run SkyPilot (holds core), "
            "with --manifests; implies --excess.",
        ),
    ] = False,
    service_accounts_of: Annotated[
        list[str] | None,
        typer.Option(
            "--service-accounts-of",
            metavar="NS",
            help="Audit every service account of NS (repeatable), with --manifests; "
            "implies --excess.",
        ),
    ] = None,
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

    request = build_request(
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
        sky_config=_as_path(sky_config),
        no_sky_config=no_sky_config,
        explain=explain,
        timeout=timeout,
        request_timeout=request_timeout,
        max_inflight=max_inflight,
        debug=debug,
        excess=excess,
        fail_on_excess=fail_on_excess,
        least_privilege=least_privilege,
        all_subjects=all_subjects,
        service_accounts_of=service_accounts_of,
    )
    try:
        code = execute(request)
    except KeyboardInterrupt:
        # typer would turn it into a silent exit 130; say why the check stopped.
        code = fail("interrupted", 130)
    raise typer.Exit(code)


def build_request(
    *,
    sa: str | None,
    namespace: str | None,
    as_user: str | None,
    as_groups: list[str] | None,
    context: list[str] | None,
    all_contexts: bool,
    kubeconfig: str | None,
    feature: list[str] | None,
    all_features: bool,
    output: str,
    output_file: Path | str | None,
    fix: Path | str | None,
    fail_on: str,
    profile: str,
    skypilot_version: str | None,
    remote_identity: str | None,
    manifests: list[str] | None,
    sky_config: Path | str | None,
    no_sky_config: bool,
    explain: bool,
    timeout: float,
    request_timeout: float,
    max_inflight: int,
    debug: bool,
    excess: bool = False,
    fail_on_excess: str | None = None,
    least_privilege: Path | str | None = None,
    all_subjects: bool = False,
    service_accounts_of: list[str] | None = None,
) -> CheckRequest:
    """The check command's flags (as typer parsed them) as a ``CheckRequest``; the watcher
    and the GitHub Action build theirs here too (``parse_check_args``)."""
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
        output_file=_as_path(output_file),
        fix_path=_as_path(fix),
        fail_on=choice(fail_on, FAIL_ON, "--fail-on"),
        profile=choice(profile, PROFILES, "--profile"),
        skypilot_version=skypilot_version,
        remote_identity=remote_identity,
        manifests=tuple(manifests or ()),
        sky_config=_as_path(sky_config),
        no_sky_config=no_sky_config,
        explain=explain,
        timeout=timeout,
        request_timeout=request_timeout,
        max_inflight=max_inflight,
        debug=debug,
        excess=excess,
        fail_on_excess=(
            None if fail_on_excess is None else choice(fail_on_excess, RISKS, "--fail-on-excess")
        ),
        least_privilege_path=_as_path(least_privilege),
        all_subjects=all_subjects,
        service_accounts_of=tuple(dict.fromkeys(service_accounts_of or ())),
    )


def _as_path(value: Path | str | None) -> Path | None:
    # typer below 0.29 turns a Path option's text into a Path only in the command's
    # callback, which ``parse_check_args`` (parsing alone) does not run.
    return Path(value) if isinstance(value, str) else value


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
    skypilot_version: Annotated[
        str | None,
        typer.Option(
            "--skypilot-version",
            metavar="VERSION",
            help="For this SkyPilot version, latest or nightly (default: installed).",
        ),
    ] = None,
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            metavar="NAME",
            help="skypilot (what SkyPilot needs) or docs (also the docs' minimum).",
        ),
    ] = "skypilot",
) -> None:
    """Write a least-privilege manifest for a new SkyPilot service account."""
    from skycheck import applicability
    from skycheck.catalogue import bind, load_catalogue, select_features
    from skycheck.fixit import build_manifest
    from skycheck.identity import service_account
    from skycheck.models import Effect
    from skycheck.models import Profile as ProfileKind
    from skycheck.skypilot_version import select

    gate = ProfileKind(choice(profile, PROFILES, "--profile"))
    version, note = select(skypilot_version)
    if note:
        sys.stderr.write(f"skycheck: warning: {note}\n")
    catalogue = load_catalogue()
    features, _ = select_features(catalogue, tuple(feature or ()), all_features)
    if not feature and not all_features:
        features = ("core",)
    subject = service_account(sa, namespace)
    # The account is the remote_identity the header tells SkyPilot to use: as for
    # `skycheck --sa NAME`, features that do not concern it (rbac-bootstrap) are left out.
    role = applicability.for_flags(sa, None)
    skipped = dict(applicability.not_applicable(role))
    for name in sorted(set(feature or ()) & set(skipped)):
        sys.stderr.write(f"skycheck: note: {name} left out: {skipped[name]}\n")
    features = tuple(f for f in features if f not in skipped)
    # What that SkyPilot version makes (fatal or degrades), as the excess audit's need
    # (excess.needed_requirements): an account holding this manifest has no excess.
    reqs = tuple(
        r
        for r in bind(
            catalogue,
            subject.namespace or namespace,
            features,
            features,
            version=version.version,
            pods_account=role.pods,
        )
        if r.effect is Effect.DEGRADES or gate.gates(r.effect)
    )
    from skycheck.fixit import CREATABLE_NAMESPACES

    fixed = sorted(
        {r.namespace for r in catalogue.rules if r.feature in features and r.scope.value == "fixed"}
        & CREATABLE_NAMESPACES
    )
    header = (
        f"# SkyPilot service account {subject.namespace}/{subject.name}, made by skycheck.\n"
        f"# Features: {', '.join(features)}; {version.describe()}"
        + (", with the docs' minimum" if gate is ProfileKind.DOCS else "")
        + ". Least privilege: concrete verbs only.\n"
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


def _quiet_root_logger(debug: bool) -> None:
    """The kubernetes client logs a failing exec plugin on the root logger; skycheck reports
    the failure itself, in one line."""
    import logging

    if not debug and not logging.getLogger().handlers:
        logging.getLogger().addHandler(logging.NullHandler())


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
    from skycheck.watch import serve

    request = parse_check_args(list(ctx.args), "skycheck watch")
    raise typer.Exit(serve(request, interval=interval, port=port, address=address))


def run(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) with typer, run the command it names and
    return the exit code (tests call this)."""
    # typer vendors click (typer._click); name its exceptions through typer's public API
    # where it has them, so the CLI does not depend on which click is underneath.
    from typer import Abort, Exit
    from typer._click.exceptions import UsageError as ClickUsageError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    _quiet_root_logger(debug)
    try:
        # Without standalone mode click returns the code of typer.Exit instead of exiting.
        result = app(args=args, prog_name="skycheck", standalone_mode=False)
        return int(result) if isinstance(result, int) else ExitCode.OK
    except SystemExit as exc:  # typer.Exit is translated to SystemExit by click
        return int(exc.code or 0) if isinstance(exc.code, int | None) else ExitCode.USAGE
    except Exit as exc:
        return int(exc.exit_code)
    except SkycheckError as exc:
        return fail(exc.one_line(), exc.exit_code)
    except ClickUsageError as exc:
        return fail(" ".join(exc.format_message().split()), ExitCode.USAGE)
    except Abort:
        return fail("interrupted", 130)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as exc:  # a bug: never a traceback with locals, never a secret
        return internal_error(exc, debug)


def main(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry point (``skycheck``, ``kubectl-skycheck``, ``python -m skycheck``)."""
    sys.exit(run(argv))


# The check command's flags, read by the typer app's own parser: ``skycheck watch`` and the
# GitHub Action (skycheck/github_action.py) take the same flags as the check itself.
_NOT_REQUEST = frozenset({"version"})  # parameters of the check callback, not of a request


def parse_check_args(args: list[str], command: str = "skycheck") -> CheckRequest:
    """``args`` (check flags only) as the request the check command would build.

    A bad flag or value raises ``UsageError`` with click's message (exit 2).
    """
    import typer.main
    from typer._click.exceptions import UsageError as ClickUsageError

    group = typer.main.get_command(app)
    try:
        # The group's own parameters are the check callback's; parse only those.
        ctx = group.make_context(command, list(args), resilient_parsing=False)
    except ClickUsageError as exc:
        raise UsageError(" ".join(exc.format_message().split())) from None
    leftover = [*getattr(ctx, "_protected_args", ()), *ctx.args]
    if leftover:
        raise UsageError(f"unexpected argument {leftover[0]!r} (only check flags belong here)")
    params = {k: v for k, v in ctx.params.items() if k not in _NOT_REQUEST}
    return build_request(**params)

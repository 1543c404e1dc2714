"""Renderers: a Report (or several) to text, one module per output format.

``render(report_or_reports, fmt)`` dispatches through ``RENDERERS``, a
mapping from every ``OutputFormat`` to a function (a test checks it is
exhaustive). Each function imports its module on first use, so importing
``skycheck.render`` costs nothing beyond the models: rich is loaded only for
``table``, PyYAML only for ``yaml``, ElementTree only for ``junit``.

A lone Report renders in the single-report form; a list of Reports (several
contexts) in each format's multi-report form, even when the list has one
element: the caller's type, not the count, picks the shape.

Shared conventions (ordering, which checks gate the verdict, labels) are in
``_common``; each format documents its own mapping in its module docstring.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from types import MappingProxyType

from skycheck.errors import UsageError
from skycheck.render._common import RenderOptions, Reports

__all__ = ["RENDERERS", "OutputFormat", "RenderOptions", "Reports", "render"]


class OutputFormat(str, enum.Enum):
    """``-o/--output`` values."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"
    JUNIT = "junit"
    SARIF = "sarif"
    MARKDOWN = "markdown"
    GITHUB = "github"
    PROMETHEUS = "prometheus"


Renderer = Callable[[Reports, RenderOptions], str]


def _table(reports: Reports, options: RenderOptions) -> str:
    from skycheck.render.table import render_table

    return render_table(reports, options)


def _json(reports: Reports, options: RenderOptions) -> str:
    from skycheck.render.json_report import render_json

    return render_json(reports, options)


def _yaml(reports: Reports, options: RenderOptions) -> str:
    from skycheck.render.yaml_report import render_yaml

    return render_yaml(reports, options)


def _junit(reports: Reports, options: RenderOptions) -> str:
    from skycheck.render.junit import render_junit

    return render_junit(reports, options)


def _sarif(reports: Reports, options: RenderOptions) -> str:
    from skycheck.render.sarif import render_sarif

    return render_sarif(reports, options)


def _markdown(reports: Reports, options: RenderOptions) -> str:
    from skycheck.render.markdown import render_markdown

    return render_markdown(reports, options)


def _github(reports: Reports, options: RenderOptions) -> str:
    from skycheck.render.github import render_github

    return render_github(reports, options)


def _prometheus(reports: Reports, options: RenderOptions) -> str:
    from skycheck.render.prometheus import render_prometheus

    return render_prometheus(reports, options)


RENDERERS: Mapping[OutputFormat, Renderer] = MappingProxyType(
    {
        OutputFormat.TABLE: _table,
        OutputFormat.JSON: _json,
        OutputFormat.YAML: _yaml,
        OutputFormat.JUNIT: _junit,
        OutputFormat.SARIF: _sarif,
        OutputFormat.MARKDOWN: _markdown,
        OutputFormat.GITHUB: _github,
        OutputFormat.PROMETHEUS: _prometheus,
    }
)


def render(
    report_or_reports: Reports,
    fmt: OutputFormat | str,
    *,
    color: bool = False,
    width: int = 100,
    fix_path: str | None = None,
    fix_per_context: bool = False,
    summary: bool = False,
) -> str:
    """Render one Report (single form) or a list of them (multi form) as ``fmt``.

    ``color`` and ``width`` matter only to ``table``; ``fix_path`` (where
    ``--fix`` wrote the manifest) feeds the "to fix" hints. ``summary`` (an audit across a
    cluster, ``skycheck/subjects.py``): the table is the per-identity summary, JSON and
    YAML add it as ``summary``, and the list of reports may be empty. The text always
    ends with exactly one newline.
    """
    try:
        output = OutputFormat(fmt)
    except ValueError:
        known = ", ".join(f.value for f in OutputFormat)
        raise UsageError(f"unknown output format {fmt!r}; known formats: {known}") from None
    options = RenderOptions(
        color=color,
        width=width,
        fix_path=fix_path,
        fix_per_context=fix_per_context,
        summary=summary,
    )
    return RENDERERS[output](report_or_reports, options)

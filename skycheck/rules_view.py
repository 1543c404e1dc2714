"""Views of the rule catalogue: ``skycheck rules`` (table, JSON) and the
generated catalogue reference page (docs/catalogue.md)."""

from __future__ import annotations

import json
from typing import Any

from skycheck.catalogue import Catalogue, request_names
from skycheck.models import Rule


def _scope(rule: Rule) -> str:
    if rule.scope.value == "fixed":
        return f"namespace {rule.namespace}"
    return "checked namespace" if rule.scope.value == "namespace" else "cluster"


def _resource(rule: Rule) -> str:
    res = rule.resource_path
    return f"{res} ({rule.group})" if rule.group else res


def _named(rule: Rule) -> str:
    names = rule.names or ((rule.name,) if rule.name else ())
    return " named " + ", ".join(f"`{n}`" for n in names) if names else ""


def catalogue_dict(catalogue: Catalogue, only: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "features": [
            {
                "name": f.name,
                "title": f.title,
                "description": f.description,
                "rules": [
                    {
                        "id": r.id,
                        "group": r.group,
                        "resource": r.resource,
                        "subresource": r.subresource,
                        "name": r.name,
                        "names": list(r.names),
                        "verbs": list(r.verbs),
                        "scope": r.scope.value,
                        "namespace": r.namespace,
                        "why": r.why,
                        "breaks": r.breaks,
                        "source": r.source,
                    }
                    for r in f.rules
                ],
            }
            for f in catalogue.features
            if not only or f.name in only
        ]
    }


def render_catalogue(catalogue: Catalogue, output: str, only: tuple[str, ...] = ()) -> str:
    if output == "json":
        return json.dumps(catalogue_dict(catalogue, only), indent=2) + "\n"
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    buf = StringIO()
    console = Console(file=buf, width=120, color_system=None, force_terminal=False)
    for f in catalogue.features:
        if only and f.name not in only:
            continue
        table = Table(title=f"{f.name}: {f.title}", title_justify="left", show_lines=False)
        for col in ("rule", "resource", "verbs", "scope", "why SkyPilot needs it"):
            table.add_column(col, overflow="fold")
        for r in f.rules:
            table.add_row(r.id, _resource(r), ", ".join(r.verbs), _scope(r), r.why)
        console.print(table)
    return buf.getvalue()


def render_markdown(catalogue: Catalogue) -> str:
    """The catalogue reference page, generated from rules/ (checked current in CI)."""
    out = [
        "# Rule catalogue",
        "",
        "<!-- Generated from rules/ by `python scripts/gen_docs.py`; do not edit. -->",
        "",
        "Every permission skycheck checks, by SkyPilot feature. Each verb of a rule is "
        "one access check, with id `<rule id>.<verb>`; a rule with resource names is checked "
        "per name for the verbs whose requests name the object (`<rule id>.<verb>.<name>`; "
        "`{namespace}` is the checked namespace), and a fix restricts those verbs to the "
        "names. Scope *checked namespace* is the "
        "namespace given with `-n` (SkyPilot's namespace); *cluster* is checked with "
        'namespace `""`.',
        "",
    ]
    total = 0
    for f in catalogue.features:
        checks = sum(len(request_names(r, v, "")) for r in f.rules for v in r.verbs)
        total += checks
        out += [
            f"## `{f.name}`: {f.title}",
            "",
            f.description,
            "",
            f"{len(f.rules)} rules, {checks} checks.",
            "",
            "| rule | resource | verbs | scope | why SkyPilot needs it | what breaks | source |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in f.rules:
            cells = [
                f"`{r.id}`",
                f"`{_resource(r)}`" + _named(r),
                ", ".join(r.verbs),
                _scope(r),
                r.why,
                r.breaks,
                r.source,
            ]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
    out.append(f"In all: {len(catalogue.rules)} rules, {total} checks.")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    import sys

    from skycheck.catalogue import load_catalogue

    sys.stdout.write(render_markdown(load_catalogue()))

"""Views of the rule catalogue: ``skycheck rules`` (table, JSON) and the
generated catalogue reference page (docs/catalogue.md)."""

from __future__ import annotations

import json
from typing import Any

from skycheck.catalogue import Catalogue, proven_versions, request_names
from skycheck.models import Rule


def _by_effect(rule: Rule, version: str) -> str:
    """``fatal: get, list; documented: watch`` for one version ("" if it needs none)."""
    groups: dict[str, list[str]] = {}
    for verb in rule.verbs:
        effect = rule.effect(version, verb)
        groups.setdefault(effect.value if effect else "not needed", []).append(verb)
    return "; ".join(f"{effect}: {', '.join(verbs)}" for effect, verbs in groups.items())


def effects_text(rule: Rule) -> str:
    """The rule's effects per proven SkyPilot version, identical versions merged."""
    per: dict[str, list[str]] = {}
    for v in proven_versions():
        per.setdefault(_by_effect(rule, v.version), []).append(v.version)
    if len(per) == 1:
        return next(iter(per))
    return " / ".join(f"{', '.join(vs)}: {text}" for text, vs in per.items())


def _scope(rule: Rule) -> str:
    return _where(rule) + (" (the pods' own account)" if rule.account == "pods" else "")


def _where(rule: Rule) -> str:
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
                        "account": r.account or "launcher",
                        "namespace": r.namespace,
                        "why": r.why,
                        "breaks": r.breaks,
                        "source": r.source,
                        "effects": {
                            v.version: {
                                verb: effect.value
                                for verb in r.verbs
                                if (effect := r.effect(v.version, verb)) is not None
                            }
                            for v in proven_versions()
                        },
                        "lost": r.lost,
                        "unproven": r.unproven,
                        "when": list(r.when),
                        "alternative": r.alternative.text if r.alternative else "",
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
        for col in ("rule", "resource", "effect by verb", "scope", "why SkyPilot needs it"):
            table.add_column(col, overflow="fold")
        for r in f.rules:
            table.add_row(r.id, _resource(r), effects_text(r), _scope(r), r.why)
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
        "Each verb has an *effect* for each SkyPilot version the lab proved the catalogue "
        "against (" + ", ".join(v.version for v in proven_versions()) + "): **fatal** (a "
        "403 stops the operation), **degrades** (SkyPilot goes on without something: the "
        "rule says what), or **documented** (in SkyPilot's documented minimum, never "
        "requested by that version). By default only fatal checks gate; `--profile docs` "
        "gates on documented ones too; degrades never gates. A rule whose scope says "
        "*(the pods' own account)* is a request SkyPilot's pods make as their own service "
        "account: it is checked only for the account the pods run as (`--sa NAME`, the "
        "docs' setup, where one account launches and is the `remote_identity`), and JSON "
        "checks carry `account: pods`. See "
        "[the SkyPilot lab](skypilot-lab.md) for how each was proven.",
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
            "| rule | resource | effect by verb | scope | why SkyPilot needs it | what breaks "
            "| source |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in f.rules:
            why = r.why
            if r.alternative:
                why += f" Or: the launcher {r.alternative.text}."
            if r.when:
                why += f" Only with feature {', '.join(r.when)}."
            breaks = r.breaks + (f" Degrades: {r.lost}" if r.lost else "")
            if r.unproven:
                breaks += f" *Not proven by the lab: {r.unproven}*"
            cells = [
                f"`{r.id}`",
                f"`{_resource(r)}`" + _named(r),
                effects_text(r),
                _scope(r),
                why,
                breaks,
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

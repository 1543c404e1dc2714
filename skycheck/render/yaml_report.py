"""The YAML report (``-o yaml``): the JSON document, as YAML.

Same dict and key order as ``json_report``; multi-line strings (the fix
manifest) are written as literal blocks so they stay readable and can be
copied out as is.
"""

from __future__ import annotations

from typing import Any

import yaml

from skycheck.render._common import RenderOptions, Reports, finish
from skycheck.render.json_report import reports_to_dict

# libyaml's emitter when present (about 10x faster on a full report), same output.
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    """Safe dumper that writes multi-line strings as ``|`` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_yaml(reports: Reports, options: RenderOptions | None = None) -> str:
    doc: dict[str, Any] = reports_to_dict(reports, options.summary if options else False)
    text: str = yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=10_000,  # never fold long strings: diffs and greps stay line-based
    )
    return finish(text)

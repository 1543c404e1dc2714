"""The parse of an offline run's input alone, in a process of its own: its floor.

``python benchmarks/_parse_floor.py yaml FILE``: every document with PyYAML's C loader, as
strict as skycheck's (a mapping with a key written twice is refused);
``json FILE``: the standard library's ``json``, as it comes; ``json-strict FILE``: ``json``
with the duplicate-key hook skycheck uses. Nothing else: no validation, no objects built.
"""

from __future__ import annotations

import sys
from typing import Any


def parse_yaml(text: str) -> None:
    import yaml

    class Strict(yaml.CSafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            mapping = super().construct_mapping(node, deep=deep)
            if len(mapping) != len(node.value):
                raise yaml.constructor.ConstructorError(
                    None, None, "duplicate key", node.start_mark
                )
            return mapping

    for _ in yaml.load_all(text, Loader=Strict):
        pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if mode == "yaml":
        parse_yaml(text)
    else:
        import json

        json.loads(text, object_pairs_hook=_unique if mode == "json-strict" else None)


if __name__ == "__main__":
    main()

"""Safe, strict YAML loading shared by every input skycheck reads.

All inputs (rules, manifests, kubeconfigs, sky configs) come through here so
they get the same guarantees: no arbitrary tags (safe loader), duplicate keys
rejected, a bounded number of aliases (no "billion laughs"), a size cap, and
errors that name the file, the document and the line, in one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from skycheck.errors import InputError

# Inputs larger than this are refused outright: RBAC for ten thousand subjects
# is a few megabytes, so 64 MiB leaves room without risking memory.
MAX_BYTES = 64 * 1024 * 1024
# Aliases are rare in Kubernetes YAML; a document with more is an attack or a mistake.
MAX_ALIASES = 100

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loader that rejects duplicate keys."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "unhashable mapping key", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _count_aliases(root: Any) -> int:
    """Count references to nodes already seen (aliases), visiting each node once.

    The C loader composes the node graph without calling Python hooks, so the
    alias limit is enforced on the composed graph, before construction.
    """
    seen: set[int] = set()
    aliases = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            aliases += 1
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append(key)
                stack.append(value)
    return aliases


def _problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
    return " ".join(f"{where}{problem}".split())


def read_text(path: str | Path, *, what: str) -> str:
    """Read a UTF-8 text file with the size cap; errors name the file."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise InputError(str(p), "", f"{what} is {size} bytes, more than {MAX_BYTES}")
        return p.read_bytes().decode("utf-8")
    except InputError:
        raise
    except UnicodeDecodeError as exc:
        raise InputError(str(p), "", f"{what} is not UTF-8 text (byte {exc.start})") from None
    except IsADirectoryError:
        raise InputError(str(p), "", f"{what} is a directory, expected a file") from None
    except OSError as exc:
        raise InputError(str(p), "", f"cannot read {what}: {exc.strerror or exc}") from None


def check_text(text: str, source: str, what: str) -> None:
    if len(text) > MAX_BYTES:
        raise InputError(source, "", f"{what} is larger than {MAX_BYTES} bytes")


def load_one(text: str, source: str, *, what: str = "YAML") -> Any:
    """Parse exactly one YAML document (empty text gives None)."""
    check_text(text, source, what)
    docs = list(load_all(text, source, what=what))
    if len(docs) > 1:
        raise InputError(source, "", f"expected one {what} document, found {len(docs)}")
    return docs[0] if docs else None


def load_all(text: str, source: str, *, what: str = "YAML") -> Iterator[Any]:
    """Parse every document of a multi-document YAML (or JSON) stream."""
    check_text(text, source, what)
    loader = _StrictLoader(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if _count_aliases(node) > MAX_ALIASES:
                raise InputError(source, f"document {index}", f"more than {MAX_ALIASES} aliases")
            try:
                yield loader.construct_document(node)
            except RecursionError:
                raise InputError(source, f"document {index}", "nested too deeply") from None
            index += 1
    except yaml.YAMLError as exc:
        raise InputError(source, f"document {index}", _problem(exc)) from None
    except RecursionError:
        raise InputError(source, f"document {index}", "nested too deeply") from None
    finally:
        loader.dispose()

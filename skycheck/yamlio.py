"""Safe, strict YAML and JSON loading shared by every input skycheck reads.

All inputs (rules, manifests, kubeconfigs, sky configs) come through here so
they get the same guarantees: no arbitrary tags (safe loader), duplicate keys
rejected, a bounded number of aliases (no "billion laughs"), a size cap, and
errors that name the file, the document and the line, in one line.

YAML is read by PyYAML's C-accelerated safe loader made strict
(:func:`load_all`): YAML 1.1, as kubectl's ``sigs.k8s.io/yaml`` reads it
(``on``/``yes`` are booleans). JSON (:func:`load_json_all`, for ``kubectl get -o
json`` output) is read by the standard library's ``json``, with the same
duplicate-key refusal and size cap; JSON is also YAML, but ``json`` reads it
ten to twenty times faster. Which one a manifest takes is decided by
``skycheck.manifests``.

With ``lines=True`` both also give each document's :class:`Lines`: where it starts and
where its ``rules``, ``subjects`` and ``items`` entries start, so findings can point at the
user's file. YAML takes them from the composed nodes' marks (the C loader composes every
node with one anyway); JSON from the offsets at which ``json``'s scanner decodes each value
of a document's top level (:func:`_json_entries`), and an item's entries when asked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple, cast

from skycheck.errors import InputError

# Inputs larger than this are refused outright: RBAC for ten thousand subjects
# is a few megabytes, so 64 MiB leaves room without risking memory.
MAX_BYTES = 64 * 1024 * 1024
# Aliases are rare in Kubernetes YAML; a document with more is an attack or a mistake.
MAX_ALIASES = 100
# A hundred aliases are enough for a "billion laughs" (ten levels of ten): PyYAML shares the
# aliased objects, but anything that walks the result (schema checks, json.dumps) walks every
# expansion. So also bound how many nodes the aliases add once expanded.
MAX_ALIAS_NODES = 100_000
# An alias is ``*`` and then a name of these characters (PyYAML's and libyaml's scanners): a
# text without this has no alias, so the alias limits need no walk over its nodes.
_ALIAS = re.compile(r"\*[0-9A-Za-z_-]")
_MERGE_TAG = "tag:yaml.org,2002:merge"


class Lines(NamedTuple):
    """Where one document (or one ``items`` entry of a List) starts, 1-based, and where the
    entries of its ``rules``, ``subjects`` and ``items`` start (empty when not known).

    A named tuple, not a dataclass: one is made for every object of the input, and a frozen
    dataclass costs several times more to build.
    """

    line: int
    rules: tuple[int, ...] = ()
    subjects: tuple[int, ...] = ()
    items: tuple[Lines, ...] = ()
    # A JSON List's item: its text and offset, so that the lines of its entries can be found
    # when asked (json_entry_lines) rather than for every item of a large List.
    text: str | None = None
    offset: int = 0

    def __repr__(self) -> str:  # never the whole input's text
        return f"Lines(line={self.line}, rules={self.rules}, subjects={self.subjects})"


# --- YAML ---------------------------------------------------------------------------------


@cache
def _yaml() -> ModuleType:
    import yaml  # imported on demand: a JSON-only run never pays for it

    return yaml


@cache
def _strict_loader() -> type[Any]:
    yaml = _yaml()
    base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[misc]
        """Safe loader that rejects duplicate keys."""

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            # Cheap in the usual case: a mapping with as many keys as pairs has no duplicate.
            # The pairs are kept first because merge keys ("<<: *base") are removed from the
            # node in place while it is flattened, and may be overridden.
            pairs = node.value[:] if isinstance(node, yaml.MappingNode) else []
            mapping = super().construct_mapping(node, deep=deep)
            if len(mapping) != len(node.value):
                self._refuse_duplicates(pairs)
            return mapping

        def _refuse_duplicates(self, pairs: list[tuple[Any, Any]]) -> None:
            """Raise for the first key written twice (merged keys may be overridden)."""
            seen: set[Any] = set()
            for key_node, _ in pairs:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)

    return StrictLoader


class _RecursiveAlias(Exception):
    """An alias refers to a node that contains it (a document that expands forever)."""


def _measure_aliases(root: Any) -> tuple[int, int]:
    """Return (aliases, nodes the aliases add when expanded), visiting each node once.

    The C loader composes the node graph without calling Python hooks, so the
    limits are enforced on the composed graph, before construction. An alias is a
    second reference to a node; a reference to a node still being visited is a
    recursive alias and raises ``_RecursiveAlias``. Iterative: documents may nest
    deeply.
    """
    yaml = _yaml()

    def children(node: Any) -> list[Any]:
        if isinstance(node, yaml.SequenceNode):
            return list(node.value)
        if isinstance(node, yaml.MappingNode):
            return [item for pair in node.value for item in pair]
        return []

    size: dict[int, int] = {}  # finished nodes: their size with aliases expanded
    active: set[int] = set()  # nodes on the current path
    aliases = 0
    added = 0
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            active.discard(key)
            size[key] = 1 + sum(size[id(child)] for child in children(node))
            continue
        if key in active:
            raise _RecursiveAlias
        if key in size:
            aliases += 1
            added += size[key]
            continue
        active.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(children(node)))
    return aliases, added


def _problem(exc: Exception) -> str:
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
        # stat() says 0 for pipes and devices (/dev/zero never ends): read at most the cap.
        with p.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise InputError(str(p), "", f"{what} is more than {MAX_BYTES} bytes")
        return data.decode("utf-8")
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


def _node_lines(node: Any, mapping: type[Any], sequence: type[Any]) -> Lines:
    """The Lines of a composed node: a few top-level keys, so cheap beside the parse."""
    rules: tuple[int, ...] = ()
    subjects: tuple[int, ...] = ()
    items: tuple[Lines, ...] = ()
    if type(node) is mapping:
        for key, value in node.value:
            name = key.value
            if type(value) is not sequence or name not in _LINE_KEYS:
                continue
            if name == "items":
                items = tuple(_node_lines(item, mapping, sequence) for item in value.value)
            elif name == "rules":
                rules = tuple(item.start_mark.line + 1 for item in value.value)
            else:
                subjects = tuple(item.start_mark.line + 1 for item in value.value)
    return Lines(node.start_mark.line + 1, rules, subjects, items)


_LINE_KEYS = frozenset(("rules", "subjects", "items"))


def load_all(text: str, source: str, *, what: str = "YAML", lines: bool = False) -> Iterator[Any]:
    """Parse every document of a multi-document YAML stream, strictly. Lazy, document by
    document. With ``lines``, yield ``(document, Lines)`` pairs."""
    check_text(text, source, what)
    yaml = _yaml()
    loader = _strict_loader()(text)
    may_alias = _ALIAS.search(text) is not None
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            try:
                aliases, added = _measure_aliases(node) if may_alias else (0, 0)
            except _RecursiveAlias:
                raise InputError(source, f"document {index}", "recursive alias") from None
            if aliases > MAX_ALIASES:
                raise InputError(source, f"document {index}", f"more than {MAX_ALIASES} aliases")
            if added > MAX_ALIAS_NODES:
                raise InputError(
                    source,
                    f"document {index}",
                    f"aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias bomb?)",
                )
            try:
                doc = loader.construct_document(node)
            except RecursionError:
                raise InputError(source, f"document {index}", "nested too deeply") from None
            except (ValueError, TypeError, IndexError, OverflowError) as exc:
                # PyYAML's constructors let these escape for explicitly tagged values it cannot
                # build (``!!int ''``, ``!!float x``): still the user's input, not our bug.
                mark = getattr(node, "start_mark", None)
                at = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
                problem = f"{at}cannot construct the tagged value ({type(exc).__name__}: {exc})"
                raise InputError(source, f"document {index}", problem) from None
            if lines:
                yield doc, _node_lines(node, yaml.MappingNode, yaml.SequenceNode)
            else:
                yield doc
            index += 1
    except yaml.YAMLError as exc:
        raise InputError(source, f"document {index}", _problem(exc)) from None
    except RecursionError:
        raise InputError(source, f"document {index}", "nested too deeply") from None
    finally:
        loader.dispose()


# --- JSON ---------------------------------------------------------------------------------


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict; a key written twice is an error, as in YAML."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return obj


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_JSON = json.JSONDecoder(object_pairs_hook=_json_object, parse_constant=_json_constant)


_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON_COMMA = re.compile(r"[ \t\n\r]*,[ \t\n\r]*")


class _NotPlain(Exception):
    """The text is not a plain JSON object as _json_entries reads it: decode it as usual."""


def _json_entries(
    text: str, pos: int, keys: frozenset[str]
) -> tuple[Any, int, dict[str, list[int]]]:
    """Decode the JSON object at ``pos`` value by value with ``json``'s own scanner, noting
    where each entry of the arrays under ``keys`` starts: (object, end, {key: offsets}).

    ``json`` keeps no positions, but its scanner decodes one value at a given offset, so
    walking the object's top level (and those arrays) by hand costs a Python step per key
    and entry, not a second parse. Anything unexpected raises; the caller then decodes the
    text as usual, for the same value or the same error.
    """
    scan: Callable[[str, int], tuple[Any, int]] = _JSON.scan_once  # type: ignore[attr-defined]
    # (always a match: the pattern matches the empty string)
    skip = cast(Callable[[str, int], re.Match[str]], _JSON_WS.match)
    next_entry = _JSON_COMMA.match
    if text[pos] != "{":
        raise _NotPlain
    pairs: list[tuple[str, Any]] = []
    found: dict[str, list[int]] = {}
    i = skip(text, pos + 1).end()
    if text[i] == "}":
        return _json_object(pairs), i + 1, found
    while True:
        if text[i] != '"':
            raise _NotPlain
        key, i = scan(text, i)
        i = skip(text, i).end()
        if text[i] != ":":
            raise _NotPlain
        i = skip(text, i + 1).end()
        if key in keys and text[i] == "[" and key not in found:
            starts = found[key] = []
            value: Any = []
            i = skip(text, i + 1).end()
            if text[i] == "]":
                i += 1
            else:
                while True:
                    starts.append(i)
                    item, i = scan(text, i)
                    value.append(item)
                    comma = next_entry(text, i)  # one step per entry: ", " and what follows
                    if comma is not None:
                        i = comma.end()
                        continue
                    i = skip(text, i).end()
                    if text[i] != "]":
                        raise _NotPlain
                    i += 1
                    break
        else:
            value, i = scan(text, i)
        pairs.append((key, value))
        i = skip(text, i).end()
        if text[i] == "}":
            return _json_object(pairs), i + 1, found
        if text[i] != ",":
            raise _NotPlain
        i = skip(text, i + 1).end()


def _entry_lines(text: str, start: int, line: int, offsets: list[int]) -> tuple[int, ...]:
    out = []
    for offset in offsets:
        line += text.count("\n", start, offset)
        start = offset
        out.append(line)
    return tuple(out)


def json_entry_lines(text: str, offset: int, line: int, key: str) -> tuple[int, ...]:
    """The lines of the entries of array ``key`` in the JSON object at ``offset`` (which
    starts on ``line``); () when it has none or cannot be read so."""
    try:
        _, _, found = _json_entries(text, offset, frozenset((key,)))
    except Exception:  # whatever it is, the object's own line stands in
        return ()
    return _entry_lines(text, offset, line, found.get(key, []))


def _json_document(text: str, pos: int, line: int) -> tuple[Any, int, Lines]:
    """One JSON document with its Lines (the entries of its rules, subjects and items)."""
    try:
        doc, end, found = _json_entries(text, pos, _LINE_KEYS)
    except Exception:  # not a plain object (or not valid): the usual decode, its error
        doc, end = _JSON.raw_decode(text, pos)
        return doc, end, Lines(line)
    items = tuple(
        Lines(item_line, text=text, offset=offset)
        for item_line, offset in zip(
            _entry_lines(text, pos, line, found.get("items", [])),
            found.get("items", []),
            strict=True,
        )
    )
    return (
        doc,
        end,
        Lines(
            line,
            _entry_lines(text, pos, line, found.get("rules", [])),
            _entry_lines(text, pos, line, found.get("subjects", [])),
            items,
        ),
    )


def load_json_all(
    text: str, source: str, *, what: str = "JSON", lines: bool = False
) -> Iterator[Any]:
    """Parse a JSON value, or a stream of them one after the other (as kubectl's
    ``YAMLOrJSONDecoder`` reads), strictly: no duplicate key, no ``NaN``. With ``lines``,
    yield ``(document, Lines)`` pairs: where the document, its rules and subjects, and the
    items of a List start (an item's own entries: ``json_entry_lines``)."""
    check_text(text, source, what)
    decode = _JSON.raw_decode
    index = 0
    pos = 0
    end = len(text)
    line, counted = 1, 0
    while True:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            return
        start = pos
        try:
            if lines:
                line += text.count("\n", counted, start)
                counted = start
                doc, pos, doc_lines = _json_document(text, pos, line)
            else:
                doc, pos = decode(text, pos)
        except json.JSONDecodeError as exc:
            problem = f"line {exc.lineno} column {exc.colno}: {exc.msg}"
            raise InputError(source, f"document {index}", problem) from None
        except ValueError as exc:  # a duplicate key, NaN
            raise InputError(source, f"document {index}", str(exc)) from None
        except RecursionError:
            raise InputError(source, f"document {index}", "nested too deeply") from None
        if lines:
            yield doc, doc_lines
        else:
            yield doc
        index += 1

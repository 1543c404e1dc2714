"""Safe, strict YAML loading shared by every input skycheck reads.

All inputs (rules, manifests, kubeconfigs, sky configs) come through here so
they get the same guarantees: no arbitrary tags (safe loader), duplicate keys
rejected, a bounded number of aliases (no "billion laughs"), a size cap, and
errors that name the file, the document and the line, in one line.

The reference is PyYAML's C-accelerated safe loader made strict
(:func:`strict_load_all`): YAML 1.1, as kubectl's ``sigs.k8s.io/yaml`` reads it
(``on``/``yes`` are booleans). It costs about 1 s per 3 MB, almost all of it in
PyYAML's Python-level construction. :func:`fast_documents` is the fast path:
``ryaml`` (serde_yaml over ``unsafe-libyaml``, a line-by-line Rust translation
of the libyaml scanner and parser PyYAML's C loader uses) parses about four
times faster. The two read the same tokens; they differ only in how plain
scalars are typed (YAML 1.2 core schema against YAML 1.1), in tags, anchors,
aliases and merge keys, and in how an empty stream looks. So the fast result is
used only when that can be proved not to matter, otherwise the strict loader
runs, and every error (duplicate key, syntax) always comes from the strict
loader, with its file, document index and line:

- before parsing, the text must have no ``!`` (tag), ``&`` (anchor), ``*``
  (alias) or ``%`` (directive) where a token can start: after whitespace, a
  flow indicator or ``:`` (full-line comments aside). Inside a word or a quoted
  scalar they are fine (``"*"``, ``pods/*``), and no byte order mark;
- after parsing, every mapping key must be a string (``true:`` and ``1:``
  would collide in Python, where ``True == 1``), there must be no float, no
  integer if the text contains ``0o`` (YAML 1.2 octal, a string in 1.1), and
  no string that YAML 1.1 would type differently had it been written plain:
  ``yes``/``no``/``on``/``off`` and the like, ``012``, ``1_000``, ``1:30``,
  ``2024-01-01``, ``=``, ``<<``. A string the YAML 1.2 schema would have typed
  (``"true"``, ``"8080"``) was necessarily quoted, so it is fine;
- a stream with no document at all (only comments) is left to the strict loader.

The proof after parsing is :class:`Agreement`: :func:`fast_documents` walks every
document; ``skycheck.manifests`` gathers the same proof while it reads the documents
(:func:`unproven_documents`), walking only those ``rbac.parse_plain`` does not read whole.

``tests/differential/test_yaml_fast_path.py`` generates YAML texts with
Hypothesis and checks that the fast path either declines or returns exactly
the strict loader's documents (``test_manifests_fast_path.py`` the same for
manifests). ``SKYCHECK_YAML_FAST=0`` turns the fast path off.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

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
# Set to 0 (or "false", "no", "off") to always use the strict PyYAML loader.
FAST_ENV = "SKYCHECK_YAML_FAST"

# --- the fast path -----------------------------------------------------------------------

# Characters after which a YAML token can start (libyaml's blanks and breaks, the flow
# indicators, ':' before a JSON-like value), and a BOM at the start of the stream.
_TOKEN_START = frozenset(" \t\r\n\x85\u2028\u2029\ufeff[]{},:?-")
# Indicators whose meaning differs between the loaders at the start of a token. An anchor
# or alias indicator not followed by a name character is a syntax error to libyaml (both
# loaders fail alike) or plain text; a directive starts only at the start of a line.
_TOKEN_INDICATORS = "!&*%"
_ANCHOR_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-")
_LINE_START = frozenset("\r\n\x85\u2028\u2029\ufeff")
# Plain scalars YAML 1.1 (PyYAML) reads as booleans and YAML 1.2 (ryaml) as strings.
# ``y``/``n`` are booleans in the YAML 1.1 spec and in go-yaml v2 (kubectl), strings in PyYAML
# and ryaml alike: no difference here, but never worth the risk.
_YAML11_BOOLS = frozenset(
    {"yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"}
    | {"y", "Y", "n", "N"}
)
_FIRST_NUMERIC = frozenset("-+.0123456789")
# Plain scalars ryaml certainly types as numbers: a *string* spelled like this was quoted.
_YAML12_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,15})?")
# PyYAML 6's implicit resolvers for numbers and timestamps (yaml/resolver.py), verbatim;
# tests/differential/test_yaml_fast_path.py checks they still match the installed PyYAML.
PYYAML_INT = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+
    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$""",
    re.X,
)
PYYAML_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
PYYAML_TIMESTAMP = re.compile(
    r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
    (?:[Tt]|[ \t]+)[0-9][0-9]?
    :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
    (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
    re.X,
)


def fast_path_enabled() -> bool:
    return os.environ.get(FAST_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


@cache
def _ryaml() -> ModuleType | None:
    try:
        import ryaml
    except ImportError:  # not installed (or no wheel for this platform): strict loader only
        return None
    return ryaml


def _indicators_free(text: str) -> bool:
    """No tag, anchor, alias or directive indicator where a token can start.

    Lines whose first non-blank character is ``#`` are skipped: such a line is a comment, or
    the inside of a quoted or block scalar, and holds no token either way. (With Unicode line
    breaks in the text, which only libyaml knows as such, nothing is skipped.)
    """
    find, rfind = text.find, text.rfind
    skip_comments = not any(ch in text for ch in "\x85\u2028\u2029")
    for ch in _TOKEN_INDICATORS:
        i = find(ch)
        while i != -1:
            if (
                (i == 0 or text[i - 1] in (_LINE_START if ch == "%" else _TOKEN_START))
                and (ch not in "&*" or text[i + 1 : i + 2] in _ANCHOR_CHARS)
                and not (skip_comments and _in_comment_line(text, i, rfind))
            ):
                return False
            i = find(ch, i + 1)
    return True


def _in_comment_line(text: str, i: int, rfind: Callable[[str, int, int], int]) -> bool:
    line = max(rfind("\n", 0, i), rfind("\r", 0, i)) + 1
    return text[line:i].lstrip(" \t").startswith("#")


def _string_agrees(value: str) -> bool:
    """True if PyYAML reads ``value`` as this same string, whether it was plain or quoted."""
    if value in _YAML11_BOOLS or value == "=" or value == "<<":
        return False
    if value[:1] in _FIRST_NUMERIC:
        if _YAML12_NUMBER.fullmatch(value):
            return True  # plain, ryaml would have returned a number: so it was quoted
        return not (
            PYYAML_INT.match(value) or PYYAML_FLOAT.match(value) or PYYAML_TIMESTAMP.match(value)
        )
    return True


class Agreement:
    """The proof that ryaml read a text as PyYAML reads it, gathered document by document.

    The predicate of the module docstring: every key a string, no float, only strings both
    loaders type alike, integers only if the text has no ``0o``. :meth:`visit` walks a node
    and collects its keys and scalars; :attr:`read` takes scalars a caller collected itself
    while reading a document whose other keys and values need no proof (``rbac.parse_plain``
    hands it every value of the objects it reads). Only the distinct values are kept, in sets
    judged once by :meth:`holds`: the walk itself is the cost (every node of the input). The
    walk is recursive, which is about twice as fast as an explicit stack here; a document
    nested deeper than the interpreter's recursion limit makes the proof fail (the strict
    loader then reads the text).
    """

    __slots__ = ("_keys", "_scalars", "_text", "_too_deep", "read")

    def __init__(self, text: str) -> None:
        self._text = text
        self._keys: set[Any] = set()
        self._scalars: set[Any] = set()
        self._too_deep = False
        # Scalars a caller read: an iterable of them at a time, added in C.
        self.read: Callable[[Iterable[Any]], None] = self._scalars.update

    def visit(self, node: Any) -> None:
        """Collect every key and scalar of ``node`` (a document, or a list of them)."""
        add_keys, add = self._keys.update, self._scalars.add
        container = (dict, list)

        def visit(node: Any) -> None:
            if type(node) is dict:
                add_keys(node)
                node = node.values()
            for value in node:
                if type(value) in container:
                    visit(value)
                else:
                    add(value)

        try:
            visit((node,))
        except RecursionError:
            self._too_deep = True

    def holds(self) -> bool:
        """True if every key and scalar collected so far reads the same in both loaders."""
        if self._too_deep:
            return False
        saw_int = False
        for value in self._scalars:
            kind = type(value)
            if kind is str:
                if not _string_agrees(value):
                    return False
            elif kind is int:
                saw_int = True
            elif kind is not bool and value is not None:
                return False  # float (1e3 vs 1.0e+3), or anything unexpected
        if saw_int and "0o" in self._text:
            return False
        return all(type(k) is str and _string_agrees(k) for k in self._keys)


def _documents_agree(docs: list[Any], text: str) -> bool:
    """The :class:`Agreement` proof over whole documents."""
    proof = Agreement(text)
    proof.visit(docs)
    return proof.holds()


def unproven_documents(text: str) -> list[Any] | None:
    """ryaml's documents of ``text`` when nothing before the :class:`Agreement` proof rules
    the fast path out (it is off, ryaml is missing or fails, an indicator, a byte order mark,
    no document at all); None otherwise. Use them only once the proof holds."""
    if not fast_path_enabled() or not text:
        return None
    ryaml = _ryaml()
    if ryaml is None or "\ufeff" in text or not _indicators_free(text):
        return None  # (PyYAML drops byte order marks anywhere, libyaml only the first one)
    try:
        docs = ryaml.loads_all(text)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException:  # a syntax error, a duplicate key, or a pyo3 PanicException
        return None
    if type(docs) is not list or docs == [None]:  # [None] is also ryaml's "no document"
        return None
    return docs


def fast_documents(text: str) -> list[Any] | None:
    """The documents of ``text`` if the fast parser provably reads them as the strict loader
    does; None when it cannot tell (or fails, or is off): then use :func:`strict_load_all`."""
    docs = unproven_documents(text)
    if docs is None or not _documents_agree(docs, text):
        return None
    return docs


# --- the strict loader (the reference) -----------------------------------------------------


@cache
def _yaml() -> ModuleType:
    import yaml  # imported on demand: the fast path never pays for it

    return yaml


@cache
def _strict_loader() -> type[Any]:
    yaml = _yaml()
    base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[misc]
        """Safe loader that rejects duplicate keys."""

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # "<<: *base": merged keys may be overridden; the base merges
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


def load_all(text: str, source: str, *, what: str = "YAML") -> Iterator[Any]:
    """Parse every document of a multi-document YAML (or JSON) stream.

    The fast path when it provably gives the same documents, else :func:`strict_load_all`.
    """
    check_text(text, source, what)
    docs = fast_documents(text)
    if docs is not None:
        yield from docs
        return
    yield from strict_load_all(text, source, what=what)


def strict_load_all(text: str, source: str, *, what: str = "YAML") -> Iterator[Any]:
    """The reference: PyYAML's safe loader, strict. Lazy, document by document."""
    check_text(text, source, what)
    yaml = _yaml()
    loader = _strict_loader()(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            try:
                aliases, added = _measure_aliases(node)
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
            yield doc
            index += 1
    except yaml.YAMLError as exc:
        raise InputError(source, f"document {index}", _problem(exc)) from None
    except RecursionError:
        raise InputError(source, f"document {index}", "nested too deeply") from None
    finally:
        loader.dispose()

"""Load the RBAC manifests given to ``--manifests`` (offline mode).

Inputs: files, directories (recursively, ``*.yaml``, ``*.yml`` and ``*.json`` in sorted
order, as ``kubectl apply -R -f`` takes them) and ``-`` for standard input. Documents may be
multi-document YAML, JSON, or ``List`` kinds (``items``); empty documents are skipped.
RBAC objects become :mod:`skycheck.rbac` objects, checked as strictly as the API server
checks them. Namespaces and ServiceAccounts are remembered so the report can say when the
checked identity or namespace is not defined; every other kind is ignored.

A malformed document raises :class:`~skycheck.errors.ManifestError` naming the file, the
document index (0-based, as :mod:`skycheck.yamlio` counts) and the key path, e.g.
``rbac.yaml: document 2: Role default/sky-sa-role: rules[0].verbs must be a list of strings``.

Parsing (:mod:`skycheck.yamlio`): a ``.json`` file is JSON, read by the standard library's
``json``; a ``.yaml`` or ``.yml`` file is YAML, read by PyYAML's strict C loader (YAML 1.1 like
the ``sigs.k8s.io/yaml`` that kubectl uses, so ``on``/``yes`` are booleans as there). Standard
input and files with another extension are JSON when their first non-blank character is ``{``
(what ``kubectl get -o json`` writes), and YAML otherwise; a text that starts with ``{`` but is
not JSON is read as YAML (a flow mapping), and if that fails too the JSON error is the one
reported. Both refuse duplicate keys and share the size cap. This module must not import
``kubernetes``: offline mode never pays for it.

Positions (:class:`Position`): where each RBAC object, ServiceAccount and the input's first
document start, and where each of a role's rules and a binding's subjects start, so a finding
can point at the user's line (:mod:`skycheck.locate`), in YAML and in JSON alike (the rule
and subject lines of a JSON List's item are found when asked).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from skycheck import rbac, yamlio
from skycheck.apiserver import ApiServer, find_api_servers
from skycheck.errors import InputError, ManifestError

STDIN = "-"
EXTENSIONS = (".yaml", ".yml", ".json")
# A List inside a List inside a List... is legal but never useful; bound the recursion.
MAX_LIST_DEPTH = 8


ObjectKey = tuple[str, str, str]  # (kind, namespace, name); namespace "" for cluster scope


class Position(NamedTuple):
    """Where one object of the input starts: its source as given (``-`` for standard
    input), its first line (1-based), and the lines of its rules or subjects, in order.
    (A named tuple: one is made for every object, and it is cheap to build.)"""

    source: str
    line: int
    object: ObjectKey | None = None
    rules: tuple[int, ...] = ()
    subjects: tuple[int, ...] = ()
    # An item of a JSON List: its input's text and offset, for yamlio.json_entry_lines.
    text: str | None = None
    offset: int = 0

    def __repr__(self) -> str:  # never the whole input's text
        return f"Position({self.source!r}, line={self.line}, object={self.object})"

    def entry_lines(self, key: str) -> tuple[int, ...]:
        """The lines of the object's ``rules`` or ``subjects`` entries; () when not known."""
        known = self.rules if key == "rules" else self.subjects
        if known or self.text is None:
            return known
        return yamlio.json_entry_lines(self.text, self.offset, self.line, key)


@dataclass(frozen=True, slots=True)
class Manifests:
    """Everything ``--manifests`` gave us."""

    objects: tuple[rbac.RbacObject, ...]  # in input order; later ones win, as with kubectl
    namespaces: frozenset[str]  # Namespace objects
    service_accounts: frozenset[tuple[str, str]]  # (namespace, name) of ServiceAccounts
    sources: tuple[str, ...]  # files read, in order ("-" for stdin)
    warnings: tuple[str, ...] = ()
    ignored: int = 0  # documents of other kinds
    api_servers: tuple[ApiServer, ...] = ()  # SkyPilot API server Deployments (apiserver.py)
    # Where things are (the definition that wins, as for ``objects``):
    positions: dict[ObjectKey, Position] = field(default_factory=dict)  # RBAC objects
    account_positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    first: Position | None = None  # the input's first document


class _Collector:
    def __init__(self, default_namespace: str) -> None:
        self.default_namespace = default_namespace
        self.objects: list[rbac.RbacObject] = []
        self.where: dict[tuple[str, str, str], tuple[str, str]] = {}  # (source, where)
        self.bindings: dict[tuple[str, str, str], rbac.Binding] = {}  # the first definition
        self.namespaces: set[str] = set()
        self.service_accounts: set[tuple[str, str]] = set()
        self.warnings: list[str] = []
        self.defaulted: list[str] = []
        self.ignored = 0
        # Deployments and ConfigMaps, kept whole: a SkyPilot API server among them names the
        # identity and config to check (apiserver.find_api_servers).
        self.workloads: list[tuple[dict[str, Any], str]] = []
        self.positions: dict[ObjectKey, Position] = {}
        self.account_positions: dict[tuple[str, str], Position] = {}
        self.first: Position | None = None

    def add_document(
        self,
        doc: Any,
        source: str,
        where: str,
        depth: int = 0,
        lines: yamlio.Lines | None = None,
    ) -> None:
        if doc is None:
            return
        if self.first is None and lines is not None:
            self.first = Position(source, lines.line, _object_of(doc, self.default_namespace))
        if not isinstance(doc, dict):
            raise ManifestError(
                source, where, f"expected a Kubernetes object (a mapping), got {_kind_of(doc)}"
            )
        api_version = doc.get("apiVersion")
        kind = doc.get("kind")
        if api_version == rbac.RBAC_API_VERSION and type(kind) is str and kind in rbac.RBAC_KINDS:
            # Most documents: where the checks below lead such a document, in one step.
            self._add_rbac(doc, kind, "v1", source, where, lines)
            return
        if not isinstance(kind, str) or not kind:
            raise ManifestError(source, where, "kind is missing (not a Kubernetes object?)")
        if not isinstance(api_version, str) or not api_version:
            raise ManifestError(source, where, f"apiVersion is missing for kind {kind}")
        if kind.endswith("List") and "items" in doc:
            self._add_list(doc, kind, source, where, depth, lines)
            return
        group, _, version = api_version.rpartition("/")
        if api_version == rbac.RBAC_GROUP:
            group, version = api_version, ""
        if group == rbac.RBAC_GROUP:
            self._add_rbac(doc, kind, version, source, where, lines)
        elif api_version == "v1" and kind == "Namespace":
            self.namespaces.add(_name(doc, source, where, kind))
        elif api_version == "v1" and kind == "ServiceAccount":
            name = _name(doc, source, where, kind)
            account = (_namespace(doc, source, where) or self.default_namespace, name)
            self.service_accounts.add(account)
            if lines is not None:
                self.account_positions[account] = Position(
                    source, lines.line, ("ServiceAccount", *account)
                )
        else:
            if (api_version, kind) in (("apps/v1", "Deployment"), ("v1", "ConfigMap")):
                self.workloads.append((doc, f"{source} {where}"))
            self.ignored += 1

    def _add_list(
        self,
        doc: dict[str, Any],
        kind: str,
        source: str,
        where: str,
        depth: int,
        lines: yamlio.Lines | None,
    ) -> None:
        if depth >= MAX_LIST_DEPTH:
            raise ManifestError(source, where, f"{kind} nested more than {MAX_LIST_DEPTH} deep")
        items = doc["items"]
        if items is None:
            return
        if not isinstance(items, list):
            raise ManifestError(source, where, f"{kind}: items must be a list")
        # A typed list (RoleList) may omit kind/apiVersion on its items.
        item_kind = kind[: -len("List")]
        # Each item's own lines (from the List's Lines), else the List's line.
        item_lines = lines.items if lines is not None else ()
        fallback = yamlio.Lines(lines.line) if lines is not None else None
        for i, item in enumerate(items):
            if isinstance(item, dict) and item_kind and "kind" not in item:
                item = {"kind": item_kind, "apiVersion": doc.get("apiVersion"), **item}
            at = item_lines[i] if i < len(item_lines) else fallback
            self.add_document(item, source, f"{where}, items[{i}]", depth + 1, at)

    def _add_rbac(
        self,
        doc: dict[str, Any],
        kind: str,
        version: str,
        source: str,
        where: str,
        lines: yamlio.Lines | None = None,
    ) -> None:
        if version != "v1":
            raise ManifestError(
                source,
                where,
                f"{kind}: {rbac.RBAC_GROUP}/{version} is not served (v1beta1 and v1alpha1 were "
                f"removed in Kubernetes 1.22); use apiVersion: {rbac.RBAC_API_VERSION}",
            )
        if kind not in rbac.RBAC_KINDS:
            raise ManifestError(source, where, f"unknown kind {kind} in {rbac.RBAC_API_VERSION}")
        try:
            obj = rbac.parse_object(doc, default_namespace=self.default_namespace)
        except rbac.InvalidObjectError as exc:
            raise ManifestError(source, where, f"{_label(doc, kind)}: {exc}") from None
        # parse_object accepted it: metadata is a mapping and its namespace a string or null.
        if kind in rbac.NAMESPACED_KINDS and not doc["metadata"].get("namespace"):
            self.defaulted.append(f"{kind} {obj.name}")
        key = (kind, obj.namespace, obj.name)  # rbac.object_key, without the call
        earlier = self.where.get(key)
        if isinstance(obj, (rbac.RoleBinding, rbac.ClusterRoleBinding)):
            self._refuse_role_ref_change(obj, key, source, where)
        if earlier is not None:
            self.warnings.append(
                f"{rbac.describe_object(obj)} is defined twice ({earlier[0]} {earlier[1]} and "
                f"{source} {where}); the later one is used, as kubectl apply would"
            )
        self.where[key] = (source, where)
        self.objects.append(obj)
        if lines is not None:
            self.positions[key] = Position(
                source, lines.line, key, lines.rules, lines.subjects, lines.text, lines.offset
            )

    def _refuse_role_ref_change(
        self, obj: rbac.Binding, key: tuple[str, str, str], source: str, where: str
    ) -> None:
        """A redefinition of a binding with another roleRef is an input error.

        The API server refuses a roleRef change on update ("field is immutable",
        ValidateRoleBindingUpdate in pkg/apis/rbac/validation/validation.go), so on a cluster
        ``kubectl apply`` of both documents leaves the first binding standing. Merging "later
        wins" would grant what no cluster can hold; warning with the first standing would let
        a check pass on a manifest that fails to apply. The bootstrap policy's bindings count
        as defined first: every cluster has them.
        """
        first = self.bindings.get(key)
        if first is None:
            first = _bootstrap_bindings().get(key)
            first_where = "the Kubernetes bootstrap policy"
        else:
            earlier = self.where[key]
            first_where = f"{earlier[0]} {earlier[1]}"
        if first is not None and first.role_ref != obj.role_ref:
            raise ManifestError(
                source,
                where,
                f"{rbac.describe_object(obj)} changes roleRef from {_ref(first.role_ref)} "
                f"(first defined in {first_where}) to {_ref(obj.role_ref)}: the API server refuses "
                "that (roleRef is immutable); delete the binding first, or drop one document",
            )
        self.bindings[key] = first if first is not None else obj

    def result(self, sources: Sequence[str]) -> Manifests:
        warnings = list(self.warnings)
        if self.defaulted:
            shown = ", ".join(self.defaulted[:3]) + (", ..." if len(self.defaulted) > 3 else "")
            warnings.append(
                f"{len(self.defaulted)} namespaced object(s) have no metadata.namespace "
                f"({shown}); assumed {self.default_namespace!r}, as kubectl apply without -n"
            )
        if not self.objects:
            warnings.append("the manifests contain no Role, ClusterRole or binding")
        return Manifests(
            objects=tuple(self.objects),
            namespaces=frozenset(self.namespaces),
            service_accounts=frozenset(self.service_accounts),
            sources=tuple(sources),
            warnings=tuple(warnings),
            ignored=self.ignored,
            api_servers=find_api_servers(self.workloads, self.default_namespace),
            positions=self.positions,
            account_positions=self.account_positions,
            first=self.first,
        )


def _ref(ref: rbac.RoleRef) -> str:
    return f"{ref.kind} {ref.name}"


@cache
def _bootstrap_bindings() -> dict[tuple[str, str, str], rbac.Binding]:
    """The bootstrap policy's bindings by (kind, namespace, name)."""
    return {
        rbac.object_key(obj): obj
        for obj in rbac.bootstrap_policy().objects
        if isinstance(obj, (rbac.RoleBinding, rbac.ClusterRoleBinding))
    }


def _object_of(doc: Any, default_namespace: str) -> ObjectKey | None:
    """(kind, namespace, name) of a document that says them, for display only."""
    if not isinstance(doc, dict):
        return None
    meta = doc.get("metadata")
    kind = doc.get("kind")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(kind, str) or not isinstance(name, str):
        return None
    ns = meta.get("namespace") if isinstance(meta, dict) else None
    if kind in _CLUSTER_SCOPED:
        ns = ""
    return (
        kind,
        ns if isinstance(ns, str) and ns else default_namespace if ns is None else "",
        name,
    )


# Kinds of the first document that have no namespace (display of the fallback location).
_CLUSTER_SCOPED = frozenset({"ClusterRole", "ClusterRoleBinding", "Namespace"})


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def _label(doc: dict[str, Any], kind: str) -> str:
    meta = doc.get("metadata")
    if isinstance(meta, dict):
        name, ns = meta.get("name"), meta.get("namespace")
        if isinstance(name, str) and name:
            if kind in rbac.NAMESPACED_KINDS and isinstance(ns, str) and ns:
                return f"{kind} {ns}/{name}"
            return f"{kind} {name}"
    return kind


def _name(doc: dict[str, Any], source: str, where: str, kind: str) -> str:
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise ManifestError(source, where, f"{kind}: metadata.name must be a non-empty string")
    return name


def _namespace(doc: dict[str, Any], source: str, where: str) -> str:
    meta = doc.get("metadata")
    ns = meta.get("namespace") if isinstance(meta, dict) else None
    if ns is None:
        return ""
    if not isinstance(ns, str):
        raise ManifestError(source, where, "metadata.namespace must be a string")
    return ns


# --- parsing ---------------------------------------------------------------------------


def _documents(text: str, source: str, is_json: bool) -> Iterator[tuple[Any, yamlio.Lines]]:
    """The documents of one input with their lines, its errors as ManifestError."""
    load = yamlio.load_json_all if is_json else yamlio.load_all
    try:
        yield from load(text, source, what="manifest", lines=True)
    except InputError as exc:
        raise ManifestError(exc.source, exc.where, exc.problem) from None


def _looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] == "{"


def parse_text(
    text: str,
    source: str,
    *,
    is_json: bool | None = None,
    default_namespace: str = "default",
) -> Manifests:
    """Parse one input's text. ``is_json`` None: JSON if it starts with ``{``, else YAML."""
    collector = _Collector(default_namespace)
    _parse_into(collector, text, source, is_json)
    return collector.result([source])


def _parse_into(collector: _Collector, text: str, source: str, is_json: bool | None) -> None:
    try:
        yamlio.check_text(text, source, "manifest")
    except InputError as exc:
        raise ManifestError(exc.source, exc.where, exc.problem) from None
    docs: Iterator[tuple[Any, yamlio.Lines]] | list[tuple[Any, yamlio.Lines]]
    if is_json is None and _looks_like_json(text):
        # Sniffed (stdin, or a file without a known extension): JSON, or YAML if that fails
        # (``{kind: Role, ...}`` is YAML). The JSON error is the one worth showing.
        try:
            docs = list(_documents(text, source, is_json=True))
        except ManifestError as json_error:
            try:
                docs = list(_documents(text, source, is_json=False))
            except ManifestError:
                raise json_error from None
    else:
        docs = _documents(text, source, is_json=bool(is_json))
    for index, (doc, lines) in enumerate(docs):
        collector.add_document(doc, source, f"document {index}", lines=lines)


def _walk(directory: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        dirs.sort()
        for name in files:
            if name.endswith(EXTENSIONS):
                found.append(Path(root) / name)
    return sorted(found, key=lambda p: p.relative_to(directory).parts)


def expand_paths(paths: Sequence[str | Path]) -> list[str]:
    """Files to read, in order: directories expanded recursively, ``-`` kept as is."""
    out: list[str] = []
    for raw in paths:
        text = str(raw)
        if text == STDIN:
            if STDIN in out:
                raise ManifestError(STDIN, "", "standard input can be given only once")
            out.append(STDIN)
            continue
        path = Path(text)
        if path.is_dir():
            files = _walk(path)
            if not files:
                raise ManifestError(text, "", "directory has no *.yaml, *.yml or *.json files")
            out += [str(f) for f in files]
        elif path.exists():
            out.append(text)
        else:
            raise ManifestError(text, "", "no such file or directory")
    return out


def load_manifests(
    paths: Sequence[str | Path],
    *,
    default_namespace: str = "default",
    stdin: TextIO | None = None,
) -> Manifests:
    """Read every manifest input. Raises ManifestError (exit code 2) on any problem."""
    if not paths:
        raise ManifestError("--manifests", "", "no manifest files given")
    files = expand_paths(paths)
    collector = _Collector(default_namespace)
    for source in files:
        if source == STDIN:
            stream = stdin if stdin is not None else sys.stdin
            try:
                text = stream.read(yamlio.MAX_BYTES + 1)
            except UnicodeDecodeError:
                raise ManifestError(STDIN, "", "standard input is not UTF-8 text") from None
            except OSError as exc:
                raise ManifestError(STDIN, "", f"cannot read standard input: {exc}") from None
            _parse_into(collector, text, STDIN, None)
            continue
        try:
            text = yamlio.read_text(source, what="manifest")
        except InputError as exc:
            raise ManifestError(exc.source, exc.where, exc.problem) from None
        is_json = {".json": True, ".yaml": False, ".yml": False}.get(Path(source).suffix)
        _parse_into(collector, text, source, is_json)
    return collector.result(files)

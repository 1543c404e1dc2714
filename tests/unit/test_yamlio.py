"""The strict loaders every input goes through: YAML (PyYAML's C loader) and JSON (``json``).

What a user sees: YAML 1.1 types as kubectl reads them, duplicate keys refused, no arbitrary
tags, alias and size caps, and one-line errors naming the file, the document and the line.
"""

from __future__ import annotations

import datetime
import sys
from typing import Any

import pytest

from skycheck import yamlio
from skycheck.errors import InputError


def load(text: str) -> list[Any]:
    return list(yamlio.load_all(text, "t.yaml"))


def error(text: str, *, json: bool = False) -> InputError:
    loader = yamlio.load_json_all if json else yamlio.load_all
    with pytest.raises(InputError) as err:
        list(loader(text, "t.yaml"))
    assert "\n" not in err.value.one_line()
    return err.value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # YAML 1.1, as sigs.k8s.io/yaml (kubectl) reads it: these are not strings.
        *((f"a: {t}", True) for t in ("yes", "Yes", "on", "ON", "true")),
        *((f"a: {t}", False) for t in ("No", "off", "OFF", "false")),
        ("a: 012", 10),  # octal
        ("a: 1_000", 1000),
        ("a: 1:30", 90),  # sexagesimal
        ("a: 2001-12-14", datetime.date(2001, 12, 14)),
        ("a: 1e3", "1e3"),  # YAML 1.1 floats need a dot
        ("a: 0o17", "0o17"),  # YAML 1.2 octal is a string in 1.1
        ("a: '8080'", "8080"),
        ("a: y", "y"),  # PyYAML leaves y/n strings
    ],
)
def test_yaml_1_1_scalars(text: str, value: object) -> None:
    [doc] = load(text)
    assert doc == {"a": value} and type(doc["a"]) is type(value)


def test_empty_streams_have_no_document() -> None:
    for text in ("", "# only a comment\n", "\n\n"):
        assert load(text) == []
    assert yamlio.load_one("", "t.yaml") is None


def test_anchors_aliases_and_merge_keys() -> None:
    assert load("a: &x 1\nb: *x") == [{"a": 1, "b": 1}]
    base = "base: &b {x: 1, y: 2}\n"
    # Merged keys may be overridden by the mapping's own keys, and one base by the next.
    assert load(base + "m:\n  <<: *b\n  x: 3\n")[0]["m"] == {"x": 3, "y": 2}
    assert load(base + "o: &o {x: 9}\nm: {<<: [*o, *b]}\n")[0]["m"] == {"x": 9, "y": 2}
    assert load("<<: {b: 1}") == [{"b": 1}]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("a: 1\na: 2", "'a'"),
        ("x: {a: 1, b: 2, a: 3}", "'a'"),
        ("- [{k: 1, k: 1}]", "'k'"),
        ("true: a\n1: b", "1"),  # True == 1: a dict would silently merge them
        ("false: a\n0: b", "0"),
        ("1: a\n1.0: b", "1.0"),
        ("base: &b {x: 1}\nm:\n  <<: *b\n  y: 1\n  y: 2\n", "'y'"),  # own keys, with a merge
    ],
)
def test_duplicate_keys_are_refused(text: str, key: str) -> None:
    assert f"duplicate key {key}" in error(text).problem


def test_errors_name_the_file_the_document_and_the_line() -> None:
    err = error("a: 1\n---\nb: 2\n---\nc: 1\nc: 2\n")
    assert (err.source, err.where) == ("t.yaml", "document 2")
    assert "line 6" in err.problem and "duplicate key 'c'" in err.problem
    err = error("a: 1\n---\nb: [unclosed\n")
    assert err.where == "document 1" and "line" in err.problem


@pytest.mark.parametrize(
    "text", ["a: !foo bar", "a: !!python/object/apply:os.system ['true']", "a: !!binary x"]
)
def test_no_arbitrary_tags(text: str) -> None:
    err = error(text)
    assert err.where == "document 0" and "Traceback" not in err.one_line()


@pytest.mark.parametrize("text", ["a: !!int ''", "a: !!float x", "- !!int 0x", "a: !!int"])
def test_unbuildable_tagged_values_are_input_errors_not_crashes(text: str) -> None:
    """PyYAML lets IndexError/ValueError escape for these."""
    err = error(text)
    assert err.where == "document 0"
    assert "cannot construct the tagged value" in err.problem


def test_alias_limits() -> None:
    many = "a: &x [1]\n" + "".join(f"b{i}: *x\n" for i in range(yamlio.MAX_ALIASES + 1))
    assert f"more than {yamlio.MAX_ALIASES} aliases" in error(many).problem
    at_limit = load(many.replace(f"b{yamlio.MAX_ALIASES}: *x\n", ""))[0]
    assert len(at_limit) == 1 + yamlio.MAX_ALIASES
    # A billion laughs: ten levels of ten aliases each.
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    assert "alias bomb" in error("\n".join(lines)).problem


def test_aliases_are_measured_wherever_they_are() -> None:
    """The alias walk is skipped only for texts with no ``*name`` at all: an alias in a flow
    collection, after a tag or at the start of the text is still counted."""
    for alias in ("[*x]", "{k: *x}", "!!seq *x", "*x"):
        text = "a: &x [1]\n" + "".join(f"b{i}: {alias}\n" for i in range(yamlio.MAX_ALIASES + 1))
        problem = error(text).problem
        assert "aliases" in problem or "line" in problem, alias
    assert load('a: ["*", "pods/*", "*x"]') == [{"a": ["*", "pods/*", "*x"]}]


def test_nesting_deeper_than_the_recursion_limit() -> None:
    depth = sys.getrecursionlimit() + 100
    assert "nesting depth" in error("[" * depth + "]" * depth).problem  # libyaml's own limit
    assert error("[" * depth + "]" * depth, json=True).problem == "nested too deeply"


def test_size_cap() -> None:
    text = " " * (yamlio.MAX_BYTES + 1)
    assert "larger than" in error(text).problem
    assert "larger than" in error(text, json=True).problem


# --- JSON ----------------------------------------------------------------------------------


def test_json_values_and_streams() -> None:
    text = '{"a": [1, "x", true, null]}\n{"b": {}}  \n'
    assert list(yamlio.load_json_all(text, "t.json")) == [{"a": [1, "x", True, None]}, {"b": {}}]
    assert list(yamlio.load_json_all(" \n", "t.json")) == []


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ('{"kind": "Role", "kind": "Role"}', "document 0", "duplicate key 'kind'"),
        ('{"a": {"b": 1, "c": 2, "b": 3}}', "document 0", "duplicate key 'b'"),
        ('{}\n{"a": NaN}', "document 1", "NaN is not valid JSON"),
        ('{"a": Infinity}', "document 0", "Infinity is not valid JSON"),
        ('{"a": 1}\n{"b": ', "document 1", "line 2 column 7"),
        ("{kind: Role}", "document 0", "line 1 column 2: Expecting property name"),
    ],
)
def test_json_errors(text: str, where: str, problem: str) -> None:
    err = error(text, json=True)
    assert (err.source, err.where) == ("t.yaml", where)
    assert problem in err.problem


# --- lines (skycheck.locate places findings with them) -------------------------------------

LINED = """\
# a comment first
kind: Role
rules:
- verbs: [get]
- verbs:
  - list
---
kind: RoleBinding
subjects:
  - {kind: User, name: a}
  - kind: User
    name: b
---
kind: List
items:
- kind: Role
  rules:
  - verbs: [get]
"""


def test_yaml_documents_rules_subjects_and_items_have_their_lines() -> None:
    lines = [lines for _, lines in yamlio.load_all(LINED, "t.yaml", lines=True)]
    assert (lines[0].line, lines[0].rules) == (2, (4, 5))
    assert (lines[1].line, lines[1].subjects) == (8, (10, 11))
    assert lines[2].line == 14
    assert [(i.line, i.rules) for i in lines[2].items] == [(16, (18,))]
    # The documents are the same with or without lines.
    assert [d for d, _ in yamlio.load_all(LINED, "t.yaml", lines=True)] == load(LINED)


def test_json_documents_rules_subjects_and_items_have_their_lines() -> None:
    text = (
        '{"kind": "Role",\n "rules": [\n  {"verbs": ["get"]},\n  {"verbs": ["list"]}\n ]}\n'
        '{"kind": "List", "items": [\n'
        '  {"kind": "RoleBinding",\n   "subjects": [\n    {"kind": "User", "name": "a"}]}]}\n'
    )
    docs = list(yamlio.load_json_all(text, "t.json", lines=True))
    (_, role_lines), (_, list_lines) = docs
    assert [d for d, _ in docs] == list(yamlio.load_json_all(text, "t.json"))
    assert (role_lines.line, role_lines.rules) == (1, (3, 4))
    assert list_lines.line == 6
    (item,) = list_lines.items
    assert item.line == 7
    assert item.text is not None
    assert yamlio.json_entry_lines(item.text, item.offset, item.line, "subjects") == (9,)
    assert yamlio.json_entry_lines(item.text, item.offset, item.line, "rules") == ()
    assert len(repr(item)) < 100  # a repr never holds the input's text


@pytest.mark.parametrize(
    "text",
    [
        '{"kind": "List", "items": [], "kind": "List"}',
        '{"kind": "List",\n "items": [}',
        '{"kind": "Role", "rules": [{"verbs": NaN}]}',
        '{"a": 1,}',
        '{"a": 1} [',
    ],
)
def test_json_errors_are_the_same_with_lines(text: str) -> None:
    plain = error(text, json=True)
    with pytest.raises(InputError) as lined:
        list(yamlio.load_json_all(text, "t.yaml", lines=True))
    assert lined.value.one_line() == plain.one_line()

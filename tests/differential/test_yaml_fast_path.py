"""The fast YAML path (ryaml) never changes what a document means.

The oracle is ``yamlio.strict_load_all`` (PyYAML's C safe loader, strict: what skycheck always
used). For Hypothesis-generated YAML texts, built to hit every place where YAML 1.1 and 1.2
readers differ (``yes``/``on`` booleans, octal and sexagesimal numbers, timestamps, ``=`` and
``<<``, tags, anchors and aliases, directives, non-string and colliding keys, empty streams,
comments, BOMs, CRLF and Unicode line breaks, tabs, every quoting style) and then mutated at
random, ``yamlio.fast_documents`` must either decline (None) or return exactly the strict
loader's documents: equal values of identical types, keys in the same order. It must never
accept a text the strict loader rejects, so every error (duplicate key, syntax) keeps coming
from the strict loader, naming the file, the document index and the line.

``SKYCHECK_DIFF_SCALE=10`` runs ten times as many examples.
"""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from benchmarks.synthetic import write_synthetic
from skycheck import yamlio
from skycheck.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
SCALE = max(1, int(os.environ.get("SKYCHECK_DIFF_SCALE", "1")))
# Fixed examples in CI; SKYCHECK_DIFF_RANDOM=1 explores new ones (by hand).
DERANDOMIZE = not os.environ.get("SKYCHECK_DIFF_RANDOM")

# --- the oracle, and identity with types ----------------------------------------------


def strict(text: str) -> list[Any] | InputError:
    try:
        return list(yamlio.strict_load_all(text, "t.yaml"))
    except InputError as exc:
        return exc


def identical(a: Any, b: Any) -> bool:
    """Equal, with identical types all the way down (``True`` is not ``1``), same key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(
            identical(ka, kb) and identical(a[ka], b[kb]) for ka, kb in zip(a, b, strict=True)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def check(text: str) -> str:
    """The property; returns what happened (for Hypothesis' statistics)."""
    fast = yamlio.fast_documents(text)
    reference = strict(text)
    if fast is None:
        return "declined" if not isinstance(reference, InputError) else "declined (invalid)"
    assert not isinstance(reference, InputError), (
        f"fast path accepted a text the strict loader rejects ({reference}):\n{text!r}"
    )
    assert identical(fast, reference), f"{text!r}\nfast:   {fast!r}\nstrict: {reference!r}"
    return "fast"


# --- generating YAML texts --------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


# Plain scalars: every token class where YAML 1.1 (PyYAML) and YAML 1.2 (serde_yaml) differ,
# and ordinary ones so that the fast path is taken often enough to be tested.
TRICKY_PLAIN = [
    *_words("y Y n N yes Yes YES yES no No NO on On ON off Off OFF oN"),
    *_words("true True TRUE tRUE false False FALSE null Null NULL nULL ~"),
    *_words("0 -0 +0 7 -7 +7 12 012 09 00 0001 -01 0o12 -0o7 0x1F -0x1f 0X1F 0b101"),
    *_words("0B1"),
    *_words("1_000 1__0 1:30 -1:30 190:20:30 1.0:2 0:1 1.5 -1.5 +1.5 1. 0. .5 -.5"),
    *_words("+.5 1.5.5"),
    *_words("1e3 1E3 1.0e3 1.0e+3 1.5e-3 1.5E3 1E+3 0e0 1.e3 .e3 1_0.5 1.5_0"),
    *_words(".inf -.inf +.inf .Inf .INF .nan .NaN .NAN .Nan inf nan NaN Infinity"),
    *_words("+inf"),
    "9007199254740993",
    "12345678901234567890",
    "99999999999999999999999",
    "-9223372036854775809",
    *_words("2001-12-14 2001-12-14t21:59:43.10-05:00 2002-12-14T21:59:43Z"),
    "2001-12-14 21:59:43.10 -5",
    *_words("= << - -- --1 ? : . ..."),
]
ORDINARY_PLAIN = [
    *_words("get list watch pods pods/exec pods/* */scale a b sky-sa team-0 v1 kind"),
    *_words("rbac.authorization.k8s.io/v1 system:serviceaccount:ns:sa x:y a#b 50% a&b"),
    *_words("hello! a*b role-12 v1.2.3 1a a1 0xg 1.2.3.4 image:1.25"),
    "two words",
    "trailing comment # here",
]
QUOTABLE = [
    *TRICKY_PLAIN,
    *ORDINARY_PLAIN,
    "",
    " ",
    "*",
    "&a",
    "!tag",
    "%",
    "#",
    "a: b",
    "it's",
    'say "hi"',
    "tab\there",
    "line\nbreak",
    "é ü ✓ 🙂",
    "nel\x85ls\u2028ps\u2029",
    "bom\ufeff",
    "back\\slash",
]
KEYS_PLAIN = [
    *_words("name kind apiVersion rules verbs a b"),
    *_words("yes on off no y true True false null ~ 1 0 -1 1.5 012 1:30 2001-12-14"),
    *_words("<< ="),
]
# Raw fragments inserted at random places: structure the grammar above never emits.
FRAGMENTS = [
    "&a ",
    "*a",
    "&a [1, 2]",
    "!!str ",
    "!!int ",
    "!!binary aGk=",
    "!foo ",
    "! ",
    "<<: {m: 1}",
    "<<: *a",
    "? ",
    "? [a, b]\n: c",
    "%YAML 1.1\n---\n",
    "%TAG ! tag:x,2000:\n---\n",
    "---",
    "...",
    "--- ",
    "# comment\n",
    "\t",
    "\r\n",
    "\ufeff",
    "\x85",
    "\u2028",
    "\x07",
    "{",
    "[",
    "]",
    "'",
    '"',
    ": ",
    "- ",
    "a: 1\na: 2\n",
    "true: 1\n1: 2\n",
    "? ~\n: 1\nnull: 2\n",
    "{a: 1, a: 2}",
    "{1: a, 1.0: b}",
]


def _double_quote(text: str) -> str:
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t" if len(out) % 2 else "\t")  # escaped or raw: both valid
        elif ch in "\x85\u2028\u2029":
            out.append({"\x85": "\\N", "\u2028": "\\L", "\u2029": "\\P"}[ch])
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@st.composite
def scalar(draw: st.DrawFn, *, flow: bool) -> str:
    style = draw(st.sampled_from(["plain", "plain", "plain", "single", "double"]))
    if style == "plain":
        # Mostly ordinary tokens, so that whole documents often take the fast path.
        pool = draw(st.sampled_from([ORDINARY_PLAIN, ORDINARY_PLAIN, TRICKY_PLAIN]))
        return draw(st.sampled_from(pool))
    text = draw(st.sampled_from(QUOTABLE))
    if style == "single":
        return "'" + text.replace("'", "''") + "'"
    return _double_quote(text)


@st.composite
def key(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 3)) == 0:
        return "'" + draw(st.sampled_from(KEYS_PLAIN)) + "'"
    return draw(st.sampled_from(KEYS_PLAIN))


@st.composite
def flow_node(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.sampled_from(["scalar", "scalar", "seq", "map"] if depth < 2 else ["scalar"]))
    if kind == "scalar":
        return draw(scalar(flow=True))
    items = draw(st.lists(flow_node(depth + 1), max_size=3))
    if kind == "seq":
        return "[" + ", ".join(items) + "]"
    keys = draw(st.lists(key(), min_size=len(items), max_size=len(items)))
    sep = draw(st.sampled_from([": ", ": ", ":"]))
    return "{" + ", ".join(f"{k}{sep}{v}" for k, v in zip(keys, items, strict=True)) + "}"


@st.composite
def block_node(draw: st.DrawFn, indent: int, depth: int = 0) -> list[str]:
    """Lines (without the final newline) of a block node at ``indent``."""
    pad = " " * indent
    choices = ["map", "seq", "flow", "literal"] if depth < 3 else ["flow"]
    kind = draw(st.sampled_from(choices))
    if kind == "flow":
        return [pad + draw(flow_node())]
    if kind == "literal":
        head = draw(st.sampled_from(["|", "|-", "|+", ">", ">-"]))
        body = draw(st.lists(st.sampled_from(TRICKY_PLAIN + ORDINARY_PLAIN), max_size=3))
        return [pad + head, *(pad + "  " + line for line in body)]
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        if kind == "map":
            k = draw(key())
            if draw(st.booleans()):
                lines.append(f"{pad}{k}: {draw(scalar(flow=False))}")
            else:
                lines.append(f"{pad}{k}:")
                lines += draw(block_node(indent + 2, depth + 1))
        elif draw(st.booleans()):
            lines.append(f"{pad}- {draw(scalar(flow=False))}")
        else:
            lines.append(f"{pad}-")
            lines += draw(block_node(indent + 2, depth + 1))
        if draw(st.integers(0, 5)) == 0:
            lines.append(pad + draw(st.sampled_from(["# on yes", "#no", "# 1:30 *a &b !c"])))
    return lines


@st.composite
def yaml_text(draw: st.DrawFn) -> str:
    docs = []
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 3]))):
        if draw(st.integers(0, 6)) == 0:
            docs.append("")  # an empty document
        else:
            docs.append("\n".join(draw(block_node(0))))
    sep = draw(st.sampled_from(["\n---\n", "\n---\n\n", "\n...\n---\n", "\n--- # c\n"]))
    text = sep.join(docs)
    if draw(st.booleans()):
        text = draw(st.sampled_from(["---\n", "--- ", "# head\n", ""])) + text
    if draw(st.booleans()):
        text += draw(st.sampled_from(["\n", "\n---\n", "\n# tail", "\n...\n"]))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(FRAGMENTS)) + text[at:]
    if draw(st.integers(0, 7)) == 0:
        text = text.replace("\n", "\r\n")
    return text


# --- the properties -----------------------------------------------------------------------


@settings(
    max_examples=1500 * SCALE,
    derandomize=DERANDOMIZE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(yaml_text())
def test_fast_path_declines_or_equals_strict_loader(text: str) -> None:
    event(check(text))


@settings(max_examples=300 * SCALE, derandomize=DERANDOMIZE, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{},'\"#&*!?|>%@`~=<.01 \t\r\n")), max_size=40))
def test_fast_path_on_random_character_soup(text: str) -> None:
    event(check(text))


KNOWN_DIFFERENCES = [
    # YAML 1.1 booleans, numbers and timestamps, read as strings or other numbers by YAML 1.2
    *(f"a: {t}" for t in ("yes", "No", "on", "OFF", "012", "1_000", "1:30", "2001-12-14")),
    *(f"a: {t}" for t in ("0o17", "1e3", "1.5E3", "+.5", "-.5", "1_0.5", "0001", "=")),
    *(f"- {t}" for t in ("y", "n", "yes", "off")),
    "[yes, no]",
    '{"a":on}',
    "on: 1",  # a key (GitHub Actions' favourite)
    "<<: {b: 1}",
    "a: &x 1\nb: *x",
    "a: !foo bar",
    "a: !!binary aGVsbG8=",
    "true: a\n1: b",  # True == 1: PyYAML says duplicate key, a dict would silently merge
    "false: a\n0: b",
    "1: a\n1.0: b",
    "",
    "# only a comment\n",
    "\n\n",
    "%YAML 1.1\n---\na: 1",
    "a: -9223372036854775809",
]


@pytest.mark.parametrize("text", KNOWN_DIFFERENCES)
def test_known_differences_are_declined_or_equal(text: str) -> None:
    assert check(text) != "fast"


def test_pyyaml_resolvers_are_the_ones_copied() -> None:
    """yamlio keeps PyYAML's int/float/timestamp resolvers verbatim; catch an upgrade."""
    theirs = {
        tag.rsplit(":", 1)[1]: regexp.pattern
        for regexps in yaml.resolver.Resolver.yaml_implicit_resolvers.values()
        for tag, regexp in regexps
    }
    ours = {
        "int": yamlio.PYYAML_INT.pattern,
        "float": yamlio.PYYAML_FLOAT.pattern,
        "timestamp": yamlio.PYYAML_TIMESTAMP.pattern,
    }
    for name, pattern in ours.items():
        assert re.sub(r"\s", "", pattern) == re.sub(r"\s", "", theirs[name]), name
    bools = re.sub(r"\s", "", theirs["bool"]).strip("^$()?:").split("|")
    assert set(bools) - {"true", "True", "TRUE", "false", "False", "FALSE"} <= set(
        yamlio._YAML11_BOOLS
    )


# --- the fast path is taken where it matters, and errors are unchanged ---------------------


@pytest.mark.parametrize(
    "path",
    [
        "tests/manifests/create-sky-sa.yaml",
        "rules/ingress.yaml",
        "rules/show-gpus.yaml",
    ],
)
def test_real_files_take_the_fast_path(path: str) -> None:
    assert check((ROOT / path).read_text()) == "fast"


def test_synthetic_cluster_takes_the_fast_path(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    write_synthetic(path, 1_000)
    assert check(path.read_text()) == "fast"


def test_kubectl_style_quoted_numbers_and_booleans_take_the_fast_path() -> None:
    text = (
        "metadata:\n  resourceVersion: '12345'\n  uid: \"0\"\n"
        "  labels: {rbac.authorization.k8s.io/aggregate-to-view: 'true'}\n"
    )
    assert check(text) == "fast"


@pytest.mark.parametrize("fast", ["1", "0"])
def test_errors_name_file_document_and_line_on_both_paths(
    fast: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(yamlio.FAST_ENV, fast)
    text = "a: 1\n---\nb: 2\n---\nc: 1\nc: 2\n"
    with pytest.raises(InputError) as err:
        list(yamlio.load_all(text, "x.yaml", what="manifest"))
    assert err.value.source == "x.yaml"
    assert err.value.where == "document 2"
    assert "line 6" in err.value.problem and "duplicate key 'c'" in err.value.problem


def test_fast_path_off_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(yamlio.FAST_ENV, "0")
    assert yamlio.fast_documents("a: b\n") is None
    assert list(yamlio.load_all("a: b\n", "x")) == [{"a": "b"}]


@pytest.mark.parametrize("text", ["a: !!int ''", "a: !!float x", "- !!int 0x", "a: !!int"])
def test_unbuildable_tagged_values_are_input_errors_not_crashes(text: str) -> None:
    """Found by the property above: PyYAML lets IndexError/ValueError escape for these."""
    with pytest.raises(InputError) as err:
        list(yamlio.load_all(text, "t.yaml"))
    assert err.value.where == "document 0"
    assert "cannot construct the tagged value" in err.value.problem


def test_nesting_deeper_than_the_recursion_limit_goes_to_the_strict_loader() -> None:
    """The agreement walk is recursive: a document deeper than the interpreter's recursion
    limit must make the fast path decline, not crash and not pass unchecked."""
    deep: list[object] = ["yes"]  # a string the strict loader would type differently
    for _ in range(sys.getrecursionlimit() + 100):
        deep = [deep]
    assert yamlio._documents_agree([deep], "") is False
    shallow: list[object] = ["pods"]
    for _ in range(50):
        shallow = [shallow]
    assert yamlio._documents_agree([{"a": shallow}], "") is True

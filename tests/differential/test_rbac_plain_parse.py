"""The plain-shape shortcut of ``rbac.parse_object`` never changes what an object means.

``parse.parse_plain`` builds the common shape of an RBAC object inline; anything else goes
to ``parse._parse_checked``, the field-by-field reference (itself checked against the API
server in tests/differential/test_regressions.py). For Hypothesis-generated objects, built
from valid ones of each kind and then mutated where the validation rules bite (names, kinds,
groups, namespaces, types, empty lists, unknown fields), the shortcut must either decline
(None) or return exactly what the reference returns; it must never accept an object the
reference rejects, so every error message keeps coming from the reference.

``SKYCHECK_DIFF_SCALE=10`` runs ten times as many examples.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from benchmarks.synthetic import write_synthetic
from skycheck import manifests, rbac, yamlio
from skycheck.rbac import parse

SCALE = max(1, int(os.environ.get("SKYCHECK_DIFF_SCALE", "1")))
DERANDOMIZE = not os.environ.get("SKYCHECK_DIFF_RANDOM")
GROUP = rbac.RBAC_GROUP


class Text(str):
    """A ``str`` subclass: the reference accepts it where the shortcut declines."""


# Values the validation rules treat differently, for any field.
SCALARS: list[Any] = [
    None,
    "",
    ".",
    "..",
    "a/b",
    "a%b",
    "x",
    "sky-sa",
    "Sky_SA",
    "a.b",
    "-a",
    "a" * 254,
    "system:masters",
    "Role",
    "ClusterRole",
    "User",
    "Group",
    "ServiceAccount",
    GROUP,
    "rbac.authorization.k8s.io/v1",
    "apps",
    "*",
    True,
    0,
    1.5,
    Text("x"),
]
LABELS: list[Any] = [
    {"a": "b"},
    {"app.kubernetes.io/name": "sky", "x": ""},
    {"a/b/c": "v"},
    {"/a": "v"},
    {"Upper_Case.ok": "v-1.x"},
    {"a": "-v"},
    {"a": "v" * 64},
    {"a": 1},
    {"a": None},
    {1: "a"},
    {"a": Text("b")},
]
VALUES: list[Any] = [*SCALARS, *LABELS, [], ["x"], ["get", "list"], [""], [1], [None], {}]

FIELDS = {
    "metadata": ["name", "namespace", "labels", "annotations", "uid", 1],
    "rule": ["verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs", "verb"],
    "roleRef": ["apiGroup", "kind", "name", "namespace"],
    "subject": ["kind", "apiGroup", "name", "namespace", "uid"],
    "top": ["rules", "roleRef", "subjects", "aggregationRule", "metadata", "status"],
}


def valid(kind: str, subject_kind: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "obj"}
    if kind in rbac.NAMESPACED_KINDS:
        meta["namespace"] = "team"
    doc: dict[str, Any] = {"apiVersion": rbac.RBAC_API_VERSION, "kind": kind, "metadata": meta}
    if kind in ("Role", "ClusterRole"):
        doc["rules"] = [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]},
        ]
    else:
        subject: dict[str, Any] = {"kind": subject_kind, "name": "sky-sa"}
        if subject_kind == "ServiceAccount":
            subject["namespace"] = "team"
        else:
            subject["apiGroup"] = GROUP
        doc["subjects"] = [subject, {"kind": "Group", "name": "devs"}]
        doc["roleRef"] = {"apiGroup": GROUP, "kind": "ClusterRole", "name": "edit"}
    return doc


def places(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every mapping of the object a mutation can change, with its sort."""
    found: list[tuple[str, dict[str, Any]]] = [("top", doc)]
    if isinstance(doc.get("metadata"), dict):
        found.append(("metadata", doc["metadata"]))
    for key, sort in (("rules", "rule"), ("subjects", "subject")):
        items = doc.get(key)
        if isinstance(items, list):
            found += [(sort, item) for item in items if isinstance(item, dict)]
    if isinstance(doc.get("roleRef"), dict):
        found.append(("roleRef", doc["roleRef"]))
    return found


LISTS: list[Any] = [None, [], ["x"], [""], ["get", "*"], [1], [None], [Text("x")], "x", {}]
NAMES: list[Any] = ["x", "", ".", "..", "a/b", "a%b", "Sky_SA", "a.b", "-a", "a" * 254, None, 1]
# Values worth trying for a key, valid and invalid; any other key gets VALUES.
POOLS: dict[Any, list[Any]] = {
    "name": [*NAMES, Text("x")],
    "kind": ["Role", "ClusterRole", "User", "Group", "ServiceAccount", "", "role", None, 1],
    "apiGroup": [GROUP, "", None, "apps", rbac.RBAC_API_VERSION, 1, Text(GROUP)],
    "namespace": ["team", "", None, 1, Text("team"), "Bad_NS"],
    "labels": [*LABELS, None, "x", []],
    "annotations": [*LABELS, None, "x", [], {"a/b": "c d", "": ""}],
    **{key: LISTS for key in FIELDS["rule"]},
}


@st.composite
def objects(draw: st.DrawFn) -> tuple[dict[str, Any], str | None]:
    kind = draw(st.sampled_from(sorted(rbac.RBAC_KINDS)))
    doc = valid(kind, draw(st.sampled_from(["ServiceAccount", "User", "Group"])))
    for _ in range(draw(st.integers(1, 3))):
        sort, target = draw(st.sampled_from(places(doc)))
        present = sorted(k for k in target if isinstance(k, str))
        action = draw(st.sampled_from(["set", "set", "delete", "append"]))
        if action == "delete" and present:
            del target[draw(st.sampled_from(present))]
            continue
        key = draw(st.sampled_from(FIELDS[sort] + present))
        pool = POOLS.get(key, VALUES) if draw(st.booleans()) else VALUES
        if action == "append" and isinstance(target.get(key), list):
            target[key] = [*target[key], draw(st.sampled_from(SCALARS))]
        else:
            target[key] = copy.deepcopy(draw(st.sampled_from(pool)))  # pools stay as they are
    return doc, draw(st.sampled_from([None, "dflt"]))


def scalars_and_keys(node: Any) -> tuple[list[Any], list[Any]]:
    """Every scalar value and every key of a document, as yamlio's agreement walk sees them."""
    scalars: list[Any] = []
    keys: list[Any] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            keys += item
            stack += item.values()
        elif isinstance(item, list):
            stack += item
        else:
            scalars.append(item)
    return scalars, keys


def typed(values: Any) -> set[tuple[type, Any]]:
    return {(type(v), v) for v in values}


def check(doc: dict[str, Any], default_namespace: str | None) -> str:
    read: list[Any] = []
    plain = parse.parse_plain(doc, default_namespace, read.append)
    # What it hands to ``read`` (the YAML proof, yamlio.Agreement) is the document's (and
    # null, for a field left out): every scalar value but null, apiVersion (its caller's) and
    # kind (one of four names), and every key but the field names of the shape.
    top = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}
    scalars, keys = scalars_and_keys(top)
    handed = typed(v for values in read for v in values)
    assert handed - typed([None]) <= typed(scalars) | typed(keys), f"{doc!r}"
    if plain is not None:
        assert type(doc["kind"]) is str and doc["kind"] in rbac.RBAC_KINDS
        assert typed(v for v in scalars if v is not None) <= handed, f"{doc!r}"
        assert typed(keys) - handed <= typed(parse.PLAIN_FIELD_NAMES), f"{doc!r}"
    try:
        reference: Any = parse._parse_checked(doc, default_namespace)
    except (rbac.InvalidObjectError, TypeError) as exc:  # TypeError: an unhashable kind
        reference = exc
    if plain is None:
        return "declined" if not isinstance(reference, Exception) else "declined (invalid)"
    assert not isinstance(reference, Exception), (
        f"shortcut accepted an object the reference rejects ({reference}): {doc!r}"
    )
    # Equal, and of the same types all the way down (repr shows a subclass or a list).
    assert plain == reference and repr(plain) == repr(reference), f"{doc!r}"
    return "plain"


@settings(
    max_examples=3000 * SCALE,
    derandomize=DERANDOMIZE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(objects())
def test_plain_parse_declines_or_agrees(case: tuple[dict[str, Any], str | None]) -> None:
    event(check(*case))


@pytest.mark.parametrize("kind", sorted(rbac.RBAC_KINDS))
@pytest.mark.parametrize("subject_kind", ["ServiceAccount", "User", "Group"])
def test_valid_objects_take_the_plain_path(kind: str, subject_kind: str) -> None:
    doc = valid(kind, subject_kind)
    for default_namespace in (None, "dflt"):
        assert check(doc, default_namespace) == "plain"
    # A namespaced object without a namespace is defaulted, or refused without a default.
    if kind in rbac.NAMESPACED_KINDS:
        del doc["metadata"]["namespace"]
        assert parse.parse_plain(doc, None) is None
        assert parse.parse_plain(doc, "dflt").namespace == "dflt"  # type: ignore[union-attr]
    assert check(doc, "dflt") == "plain"


def test_the_bootstrap_policy_and_the_benchmark_input(tmp_path: Path) -> None:
    """Every bootstrap object (labels and annotations: plain; aggregation and non-resource URLs:
    declined) and every object of the synthetic benchmark input (all plain) agrees with the
    reference."""
    data = json.loads(
        (Path(parse.__file__).parent.parent / "data" / "bootstrap-rbac.json").read_text()
    )
    results = [check(item, None) for item in data["items"]]
    assert set(results) == {"plain", "declined"} and results.count("plain") > 100
    path = tmp_path / "big.yaml"
    write_synthetic(path, 400)
    docs = yamlio.fast_documents(path.read_text())
    assert docs is not None
    rbac_docs = [d for d in docs if d["kind"] in rbac.RBAC_KINDS]
    results = [check(d, "team-0") for d in rbac_docs]
    assert set(results) == {"plain"}
    loaded = manifests.parse_text(path.read_text(), str(path), default_namespace="team-0")
    assert list(loaded.objects) == [parse._parse_checked(d, "team-0") for d in rbac_docs]


def test_the_field_names_read_alike_in_both_yaml_loaders() -> None:
    """The keys and kinds parse_plain does not hand to the YAML proof need no proof: YAML 1.1
    and 1.2 read each of them, plain or quoted, as the same string."""
    assert all(yamlio._string_agrees(name) for name in parse.PLAIN_FIELD_NAMES | rbac.RBAC_KINDS)
    assert {"apiVersion", "verbs", "roleRef", "apiGroup"} <= parse.PLAIN_FIELD_NAMES


def test_equal_rules_are_one_object_and_the_cache_is_bounded() -> None:
    """parse_plain shares one PolicyRule among equal rules (records are immutable), and keeps
    no more than _RULES_KEPT of them."""
    first, second = valid("Role", "User"), valid("Role", "User")
    second["metadata"]["name"] = "other"
    a, b = parse.parse_plain(first, None), parse.parse_plain(second, None)
    assert isinstance(a, rbac.Role) and isinstance(b, rbac.Role)
    assert a.rules == b.rules and all(x is y for x, y in zip(a.rules, b.rules, strict=True))
    # The same items, one moved to the next list: another rule.
    left, right = valid("Role", "User"), valid("Role", "User")
    left["rules"] = [{"verbs": ["get"], "apiGroups": ["", "apps"], "resources": ["pods"]}]
    right["rules"] = [{"verbs": ["get", ""], "apiGroups": ["apps"], "resources": ["pods"]}]
    c, d = parse.parse_plain(left, None), parse.parse_plain(right, None)
    assert isinstance(c, rbac.Role) and isinstance(d, rbac.Role)
    assert c.rules[0].api_groups == ("", "apps") and d.rules[0].verbs == ("get", "")
    for i in range(parse._RULES_KEPT + 10):
        role = valid("Role", "User")
        role["rules"][0]["verbs"] = [f"verb-{i}"]
        assert parse.parse_plain(role, None) is not None
        assert len(parse._RULES) <= parse._RULES_KEPT

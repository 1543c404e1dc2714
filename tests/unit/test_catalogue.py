"""The rule catalogue: content promised by the docs, schema validation, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skycheck import yamlio
from skycheck.catalogue import (
    KNOWN_FEATURES,
    bind,
    default_version,
    feature_files,
    load_catalogue,
    load_schema,
    rules_dir,
    schema_errors,
    select_features,
)
from skycheck.errors import CatalogueError, UsageError
from skycheck.models import Scope


def _verbs(cat, feature, resource, subresource="", namespace_scope=None):
    out = set()
    for r in cat.feature(feature).rules:
        same = r.resource == resource and r.subresource == subresource
        if same and (namespace_scope is None or r.scope is namespace_scope):
            out |= set(r.verbs)
    return out


def test_every_known_feature_has_a_file_and_order_is_stable():
    cat = load_catalogue()
    assert cat.names == KNOWN_FEATURES


def test_core_is_the_documented_role_and_clusterrole_plus_what_the_lab_found():
    cat = load_catalogue()
    core = cat.feature("core")
    got = {(r.group, r.resource_path, r.scope) for r in core.rules}
    assert got == {
        ("", "pods", Scope.NAMESPACE),
        ("", "pods/status", Scope.NAMESPACE),
        ("", "pods/exec", Scope.NAMESPACE),
        ("", "pods/portforward", Scope.NAMESPACE),
        ("", "services", Scope.NAMESPACE),
        ("", "secrets", Scope.NAMESPACE),
        ("", "events", Scope.NAMESPACE),
        ("", "nodes", Scope.CLUSTER),
        ("node.k8s.io", "runtimeclasses", Scope.CLUSTER),
        ("apps", "deployments", Scope.NAMESPACE),  # a launch lists them (rules/observed)
    }
    assert _verbs(cat, "core", "events") == {"get", "list", "watch"}
    assert _verbs(cat, "core", "pods", "exec") == {"create", "get"}
    assert "deletecollection" in _verbs(cat, "core", "pods")


def test_no_rule_uses_a_wildcard_and_ids_are_unique():
    cat = load_catalogue()
    ids = [r.id for r in cat.rules]
    assert len(ids) == len(set(ids))
    for r in cat.rules:
        assert "*" not in r.verbs and "*" not in r.resource and r.group != "*"


def test_optional_features_match_the_docs_and_code():
    cat = load_catalogue()
    daemonsets = cat.feature("object-store-mounting").rules[0]
    assert (daemonsets.group, daemonsets.resource, daemonsets.namespace) == (
        "apps",
        "daemonsets",
        "skypilot-system",
    )
    assert _verbs(cat, "show-gpus", "pods", namespace_scope=Scope.CLUSTER) == {"get", "list"}
    ingress = {r.resource: r for r in cat.feature("ingress").rules}
    assert ingress["services"].namespace == "ingress-nginx"
    assert ingress["ingresses"].scope is Scope.NAMESPACE  # code-only addition
    assert {r.resource for r in cat.feature("high-availability").rules} == {
        "deployments",
        "persistentvolumeclaims",
    }


def test_bind_expands_one_check_per_verb_with_cluster_scope_empty_namespace():
    cat = load_catalogue()
    reqs = bind(cat, "team-a", ["core"], ["core"])
    # Every verb the default version needs or documents (core.ssh-key-secret is 0.10's only).
    version = default_version()
    assert len(reqs) == sum(
        1 for r in cat.feature("core").rules for v in r.verbs if r.effect(version, v)
    )
    assert not any(r.rule_id == "core.ssh-key-secret" for r in reqs)
    old = bind(cat, "team-a", ["core"], ["core"], version="0.10.3.post2")
    assert {r.id for r in old if r.rule_id == "core.ssh-key-secret"} == {
        "core.ssh-key-secret.get.sky-ssh-keys",
        "core.ssh-key-secret.create",
        "core.ssh-key-secret.patch.sky-ssh-keys",
    }
    nodes = [r for r in reqs if r.resource == "nodes"]
    assert {r.namespace for r in nodes} == {""}
    pods = [r for r in reqs if r.resource == "pods"]
    assert {r.namespace for r in pods} == {"team-a"}
    assert all(r.required for r in reqs)
    assert len({r.id for r in reqs}) == len(reqs)


def test_feature_selection_defaults_and_flags():
    cat = load_catalogue()
    checked, required = select_features(cat, [], False)
    assert checked == cat.names and required == ("core",)
    checked, required = select_features(cat, ["ingress"], False)
    assert checked == required == ("core", "ingress")
    checked, required = select_features(cat, [], True)
    assert required == cat.names
    with pytest.raises(UsageError, match="unknown feature 'gpu'"):
        select_features(cat, ["gpu"], False)


def test_rules_files_are_valid_per_jsonschema_too():
    schema = load_schema()
    for path in feature_files(rules_dir()):
        jsonschema.validate(yamlio.load_one(path.read_text(), path.name), schema)


def _copy_rules(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    shutil.copytree(rules_dir(), d)
    return d


# core.nodes as rules/core.yaml writes it (rules[7]).
NODES = (
    "    effect: fatal\n    verbEffects: {get: documented, watch: documented}\n    scope: cluster\n"
)


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("verbs: [get, update, patch]", "verbs: get", "rules[1].verbs"),
        ("scope: cluster\n", "scope: galaxy\n", "rules[7].scope"),
        ("    resource: events\n", "    resource: events\n    colour: red\n", "rules[6].colour"),
        (
            "verbs: [get, list, watch]\n    effect: documented",
            "verbs: ['*']\n    effect: documented",
            "rules[6].verbs",
        ),
        (NODES, NODES.replace("    effect: fatal\n", ""), "rules[7].effect"),
        (NODES, NODES.replace("effect: fatal", "effect: lethal"), "rules[7].effect"),
        (NODES, NODES.replace("effect: fatal", "effect: degrades"), "rules[7].lost"),
        (
            NODES,
            NODES.replace("get: documented", "delete: documented"),
            "rules[7].verbEffects.delete",
        ),
        (
            NODES,
            NODES.replace("    scope:", "    versionEffects: {'0.1': {get: none}}\n    scope:"),
            "rules[7].versionEffects.0.1",
        ),
    ],
)
def test_bad_catalogue_data_names_file_and_key(tmp_path, old, new, where):
    d = _copy_rules(tmp_path)
    core = d / "core.yaml"
    text = core.read_text()
    assert old in text
    core.write_text(text.replace(old, new, 1))
    with pytest.raises(CatalogueError) as info:
        load_catalogue(d)
    assert "core.yaml" in info.value.one_line()
    assert where in info.value.one_line()


def test_duplicate_rule_id_across_files_is_refused(tmp_path):
    d = _copy_rules(tmp_path)
    (d / "volumes.yaml").write_text(
        (d / "volumes.yaml")
        .read_text()
        .replace("volumes.storageclasses", "volumes.persistentvolumeclaims")
    )
    with pytest.raises(CatalogueError, match=r"rules\[1\]\.id"):
        load_catalogue(d)


def test_duplicate_yaml_keys_are_refused(tmp_path):
    d = _copy_rules(tmp_path)
    (d / "core.yaml").write_text((d / "core.yaml").read_text() + "feature: core\n")
    with pytest.raises(CatalogueError, match="duplicate key 'feature'"):
        load_catalogue(d)


# The hand-written schema interpreter must agree with jsonschema on mutated rules.
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(
        ["", "*", "get", "pods", "namespace", "fixed", "cluster", "Bad Value", "docs, x", "a.b"]
    ),
)
_value = st.recursive(
    _scalar,
    lambda c: (
        st.lists(c, max_size=3)
        | st.dictionaries(
            st.sampled_from(["id", "verbs", "scope", "namespace", "x"]), c, max_size=3
        )
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(
        [
            "id",
            "group",
            "resource",
            "subresource",
            "verbs",
            "scope",
            "namespace",
            "why",
            "breaks",
            "source",
            "name",
            "extra",
        ]
    ),
    value=_value,
    drop=st.booleans(),
)
def test_schema_interpreter_agrees_with_jsonschema(key, value, drop):
    schema = load_schema()
    doc = yamlio.load_one((rules_dir() / "ingress.yaml").read_text(), "ingress.yaml")
    rule = doc["rules"][0]
    if drop:
        rule.pop(key, None)
    else:
        rule[key] = value
    ours = schema_errors(json.loads(json.dumps(doc)), schema)
    theirs = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    assert bool(ours) == bool(theirs), (ours, [e.message for e in theirs])

"""Loading manifests through the fast YAML path never changes what they mean.

``skycheck.manifests`` proves the fast parser's documents with ``yamlio.Agreement`` while it
reads them: ``rbac.parse_plain`` hands the proof the values of each plain RBAC object, and only
the other documents are walked (``manifests._add_proven``). The oracle is the same loading with
the fast path off (``SKYCHECK_YAML_FAST=0``: PyYAML's strict loader). For Hypothesis-generated
manifest texts (Roles, ClusterRoles, bindings, ServiceAccounts, Namespaces and ignored kinds,
their names, labels, rules and subjects drawn from ordinary values and from the YAML 1.1 / 1.2
differences of tests/differential/test_yaml_fast_path.py), both must give the same manifests
(objects of identical types, warnings, namespaces, service accounts, ignored documents) or the
same error, and the proof must decide exactly as the whole-document walk does
(``yamlio.fast_documents``).

``SKYCHECK_DIFF_SCALE=10`` runs ten times as many examples.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from benchmarks.synthetic import write_synthetic
from skycheck import manifests, yamlio
from skycheck.errors import ManifestError
from tests.differential.test_yaml_fast_path import ORDINARY_PLAIN, TRICKY_PLAIN, scalar

SCALE = max(1, int(os.environ.get("SKYCHECK_DIFF_SCALE", "1")))
DERANDOMIZE = not os.environ.get("SKYCHECK_DIFF_RANDOM")
NAMESPACE = "team-0"

# Values that make valid objects, so that whole texts often take the fast path.
VALID = ["sky-sa", "team-0", "get", "list", "pods", "apps", "edit", "x", "a.b", "role-12"]


@st.composite
def value(draw: st.DrawFn) -> str:
    """A scalar as written in a flow collection: mostly valid, else anything."""
    pick = draw(st.integers(0, 9))
    if pick < 6:
        return draw(st.sampled_from(VALID))
    if pick < 8:
        return draw(st.sampled_from(TRICKY_PLAIN + ORDINARY_PLAIN))
    return draw(scalar(flow=True))


@st.composite
def metadata(draw: st.DrawFn, namespaced: bool) -> list[str]:
    lines = ["metadata:", f"  name: {draw(value())}"]
    if namespaced and draw(st.integers(0, 3)):
        lines.append(f"  namespace: {draw(value())}")
    for field in ("labels", "annotations"):
        if draw(st.integers(0, 3)) == 0:
            lines.append(f"  {field}: {{{draw(value())}: {draw(value())}}}")
    return lines


@st.composite
def document(draw: st.DrawFn) -> str:
    kind = draw(
        st.sampled_from(
            ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"] * 3
            + ["ServiceAccount", "Namespace", "ConfigMap"]
        )
    )
    rbac_kind = kind not in ("ServiceAccount", "Namespace", "ConfigMap")
    api = "rbac.authorization.k8s.io/v1" if rbac_kind else "v1"
    if draw(st.integers(0, 9)) == 0:
        api = draw(value())
    lines = [f"apiVersion: {api}", f"kind: {kind}"]
    lines += draw(metadata(kind in ("Role", "RoleBinding", "ServiceAccount", "ConfigMap")))
    if kind in ("Role", "ClusterRole"):
        lines.append("rules:")
        for _ in range(draw(st.integers(0, 2))):
            lines.append(f"- apiGroups: [{draw(value())}]")
            lines.append(f"  resources: [{draw(value())}, {draw(value())}]")
            lines.append(f"  verbs: [{draw(value())}]")
            if draw(st.integers(0, 3)) == 0:
                lines.append(f"  resourceNames: [{draw(value())}]")
    elif rbac_kind:
        subject = draw(st.sampled_from(["ServiceAccount", "User", "Group"]))
        ns = f", namespace: {draw(value())}" if subject == "ServiceAccount" else ""
        lines.append(f"subjects:\n- {{kind: {subject}, name: {draw(value())}{ns}}}")
        role = "ClusterRole" if kind == "ClusterRoleBinding" or draw(st.booleans()) else "Role"
        lines.append(
            f"roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {role}, name: {draw(value())}}}"
        )
    elif kind == "ConfigMap":
        lines.append(f"data: {{a: {draw(value())}, b: {draw(value())}}}")
    return "\n".join(lines)


# Documents that are not objects of one kind: empty, a scalar, a list, a List of objects.
ODD_DOCUMENTS = [
    "",
    "# only a comment",
    "just text",
    "- a\n- b",
    "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n"
    "  metadata: {name: team-0}",
]


@st.composite
def manifest_text(draw: st.DrawFn) -> str:
    docs = draw(st.lists(st.one_of(document(), st.sampled_from(ODD_DOCUMENTS)), max_size=4))
    return "\n---\n".join(docs) + "\n"


def load(text: str) -> manifests.Manifests | str:
    try:
        return manifests.parse_text(text, "t.yaml", is_json=False, default_namespace=NAMESPACE)
    except ManifestError as exc:
        return f"error: {exc}"


def proof_holds(text: str) -> bool | None:
    """Whether _add_proven took the fast documents (None: it was not asked)."""
    docs = yamlio.unproven_documents(text)
    if docs is None:
        return None
    try:
        return manifests._add_proven(manifests._Collector(NAMESPACE), docs, text, "t.yaml")
    except ManifestError:
        return True  # raised while adding, after the proof held


def strict_load(text: str) -> manifests.Manifests | str:
    """The oracle: the same loading with the fast path off."""
    saved = os.environ.get(yamlio.FAST_ENV)
    os.environ[yamlio.FAST_ENV] = "0"
    try:
        return load(text)
    finally:
        if saved is None:
            del os.environ[yamlio.FAST_ENV]
        else:
            os.environ[yamlio.FAST_ENV] = saved


def check(text: str) -> str:
    holds = proof_holds(text)
    if holds is not None:
        # The same decision as the walk over whole documents.
        assert holds == (yamlio.fast_documents(text) is not None), text
    fast = load(text)
    strict = strict_load(text)
    assert type(fast) is type(strict), f"{text}\nfast:   {fast!r}\nstrict: {strict!r}"
    if isinstance(fast, str):
        assert fast == strict, text
    else:
        assert fast == strict and repr(fast) == repr(strict), text
    outcome = "fast" if holds else "strict"
    return f"{outcome}, {'error' if isinstance(fast, str) else 'loaded'}"


@settings(
    max_examples=1000 * SCALE,
    derandomize=DERANDOMIZE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(manifest_text())
def test_manifests_load_alike_with_and_without_the_fast_path(text: str) -> None:
    event(check(text))


@pytest.mark.parametrize(
    "text",
    [
        # An ignored kind with a value PyYAML cannot build (no such date): strict's error.
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: 2024-99-99}\n",
        # YAML 1.1 booleans and numbers inside plain RBAC objects: read as PyYAML reads them.
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: on}\n"
        "rules: [{apiGroups: [''], resources: [pods], verbs: [get]}]\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: x\n"
        "  labels: {a: yes}\nrules: []\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: x}\n"
        "rules: [{apiGroups: [''], resources: [pods], verbs: [get], resourceNames: [012]}]\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: x}\n"
        "subjects: [{kind: User, name: 1:30}]\nroleRef: {kind: Role, name: r}\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: x}\n"
        "subjects: [{kind: ServiceAccount, name: s, namespace: 2001-12-14}]\n"
        "roleRef: {kind: Role, name: r}\n",
    ],
)
def test_known_differences_in_manifests(text: str) -> None:
    assert check(text).startswith("strict")


def test_the_benchmark_input_takes_the_fast_path(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    write_synthetic(path, 400)
    assert check(path.read_text()) == "fast, loaded"

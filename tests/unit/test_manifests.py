"""Loading --manifests inputs: files, directories, stdin, YAML, JSON, Lists and bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from skycheck import rbac
from skycheck.errors import ExitCode, ManifestError
from skycheck.manifests import Manifests, load_manifests, parse_text

ROOT = Path(__file__).resolve().parents[2]

ROLE = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r, namespace: ns}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get]
"""
BINDING = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: b, namespace: ns}
subjects: [{kind: ServiceAccount, name: sky-sa}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}
"""


NS_JSON = '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(paths: list[str | Path], **kwargs: object) -> ManifestError:
    with pytest.raises(ManifestError) as exc:
        load_manifests(paths, **kwargs)  # type: ignore[arg-type]
    return exc.value


class TestFormats:
    def test_multi_document_yaml_with_empty_documents(self, tmp_path: Path) -> None:
        f = write(tmp_path / "a.yaml", "---\n" + ROLE + "---\n---\n" + BINDING + "---\n")
        m = load_manifests([f])
        assert [type(o).__name__ for o in m.objects] == ["Role", "RoleBinding"]
        assert m.sources == (str(f),)
        assert m.warnings == ()

    def test_json_file_and_json_stream(self, tmp_path: Path) -> None:
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "c"},
            "rules": None,
        }
        one = write(tmp_path / "one.json", json.dumps(role, indent="\t"))
        assert load_manifests([one]).objects == (rbac.ClusterRole("c"),)
        stream = write(
            tmp_path / "two.json",
            json.dumps(role) + "\n" + json.dumps({**role, "metadata": {"name": "d"}}),
        )
        assert [o.name for o in load_manifests([stream]).objects] == ["c", "d"]

    def test_list_kinds(self, tmp_path: Path) -> None:
        items = [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "c1"},
            },
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}],
            },
        ]
        f = write(
            tmp_path / "list.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        )
        m = load_manifests([f])
        assert m.objects == (rbac.ClusterRole("c1"),)
        assert m.namespaces == frozenset({"team"})
        # A typed list's items may omit kind and apiVersion (as the API returns them).
        typed = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleList",
            "items": [{"metadata": {"name": "c2"}}],
        }
        g = write(tmp_path / "typed.yaml", json.dumps(typed))
        assert load_manifests([g]).objects == (rbac.ClusterRole("c2"),)
        empty = write(tmp_path / "empty.yaml", "apiVersion: v1\nkind: List\nitems: null\n")
        assert load_manifests([empty]).objects == ()

    def test_other_kinds_are_ignored_but_namespaces_and_service_accounts_remembered(
        self, tmp_path: Path
    ) -> None:
        f = write(
            tmp_path / "m.yaml",
            """\
            apiVersion: v1
            kind: ServiceAccount
            metadata: {name: sky-sa, namespace: team}
            ---
            apiVersion: v1
            kind: ServiceAccount
            metadata: {name: other}
            ---
            apiVersion: v1
            kind: Namespace
            metadata: {name: skypilot-system}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: d}
            spec: {replicas: 1}
            ---
            apiVersion: example.com/v1
            kind: Role
            metadata: {name: not-rbac}
            """,
        )
        m = load_manifests([f])
        assert m.service_accounts == frozenset({("team", "sky-sa"), ("default", "other")})
        assert m.namespaces == frozenset({"skypilot-system"})
        assert m.ignored == 2
        assert m.objects == ()
        assert m.warnings == ("the manifests contain no Role, ClusterRole or binding",)

    def test_yaml_1_1_booleans_are_not_strings(self, tmp_path: Path) -> None:
        # kubectl's YAML (go-yaml v2) reads `on` as a boolean too: the API server rejects it.
        f = write(tmp_path / "a.yaml", ROLE.replace("verbs: [get]", "verbs: [get, on]"))
        assert "rules[0].verbs must be a list of strings" in error_of([f]).message

    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            # YAML 1.1 values where a string belongs, as kubectl reads them: refused.
            ("metadata: {name: on, namespace: ns}", "metadata.name must be a string"),
            ("metadata: {name: r, namespace: 2001-12-14}", "metadata.namespace must be a string"),
            ("metadata: {name: r, namespace: ns, labels: {a: yes}}", "labels.a must be a string"),
            ("metadata: {name: 1:30, namespace: ns}", "metadata.name must be a string"),
        ],
    )
    def test_yaml_1_1_values_where_a_string_belongs(
        self, tmp_path: Path, value: str, problem: str
    ) -> None:
        f = write(tmp_path / "a.yaml", ROLE.replace("metadata: {name: r, namespace: ns}", value))
        assert problem in error_of([f]).message
        f = write(tmp_path / "b.yaml", ROLE.replace("[get]", "[get]\n  resourceNames: [012]"))
        assert "rules[0].resourceNames must be a list of strings" in error_of([f]).message


class TestFormat:
    """JSON or YAML: by the extension, else by the first non-blank character."""

    def test_by_extension(self, tmp_path: Path) -> None:
        # A .json file is JSON even if YAML would read it; a .yaml file holding JSON is YAML.
        flow = "{apiVersion: v1, kind: Namespace, metadata: {name: a}}"
        err = error_of([write(tmp_path / "a.json", flow)])
        assert err.where == "document 0" and "Expecting property name" in err.problem
        assert load_manifests([write(tmp_path / "a.yaml", flow)]).namespaces == {"a"}
        assert load_manifests([write(tmp_path / "b.yaml", NS_JSON)]).namespaces == {"a"}
        # JSON with a duplicate key, in a .yaml file: the YAML loader refuses it too.
        dup = '{"kind": "Namespace", "kind": "Namespace"}'
        assert "duplicate key 'kind'" in error_of([write(tmp_path / "c.yaml", dup)]).problem

    @pytest.mark.parametrize("name", ["rbac.txt", "rbac", "-"])
    def test_by_the_first_character(self, tmp_path: Path, name: str) -> None:
        def load(text: str) -> Manifests:
            if name == "-":
                return load_manifests(["-"], stdin=io.StringIO(text))
            return load_manifests([write(tmp_path / name, text)])

        def error(text: str) -> ManifestError:
            with pytest.raises(ManifestError) as exc:
                load(text)
            return exc.value

        assert load("\n  \t" + NS_JSON).namespaces == {"a"}
        assert load("kind: Namespace\napiVersion: v1\nmetadata: {name: y}").namespaces == {"y"}
        # Starts with "{" but is not JSON: a YAML flow mapping; if YAML fails too, the JSON
        # error is the one shown.
        flow = "{apiVersion: v1, kind: Namespace, metadata: {name: f}}"
        assert load(flow).namespaces == {"f"}
        assert "Expecting ',' delimiter" in error('{"kind": "Namespace" "x": [}').problem
        assert "duplicate key 'kind'" in error('{"kind": "Namespace", "kind": "x"}').problem

    def test_kubectl_get_json_list(self, tmp_path: Path) -> None:
        """What ``kubectl get roles,rolebindings -A -o json`` writes: a List whose items carry
        the server's metadata (uid, resourceVersion, managedFields, ...)."""
        path = write(tmp_path / "rbac.json", kubectl_json(DOCS_SA.read_text()))
        m = load_manifests([path])
        from_yaml = load_manifests([DOCS_SA])
        assert m.objects == from_yaml.objects and len(m.objects) == 8
        assert m.service_accounts == from_yaml.service_accounts
        assert m.sources == (str(path),) and m.warnings == from_yaml.warnings
        assert load_manifests(["-"], stdin=io.StringIO(path.read_text())).objects == m.objects


DOCS_SA = ROOT / "tests" / "manifests" / "create-sky-sa.yaml"


def kubectl_json(yaml_text: str) -> str:
    """The objects of a YAML manifest as ``kubectl get ... -o json`` prints them."""
    import yaml

    items = []
    for i, doc in enumerate(d for d in yaml.safe_load_all(yaml_text) if d):
        meta = doc["metadata"]
        meta.update(
            creationTimestamp="2026-12-07T10:00:00Z",
            resourceVersion=str(400 + i),
            uid=f"6f1c{i:04d}-0000-4000-8000-000000000000",
            managedFields=[
                {
                    "apiVersion": doc["apiVersion"],
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:annotations": {".": {}}}},
                    "manager": "kubectl-client-side-apply",
                    "operation": "Update",
                    "time": "2026-12-07T10:00:00Z",
                }
            ],
        )
        meta.setdefault("annotations", {})["kubectl.kubernetes.io/last-applied-configuration"] = (
            json.dumps(doc, default=str) + "\n"
        )
        items.append(doc)
    return json.dumps(
        {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}},
        indent=4,
    )


class TestPaths:
    def test_directories_recursive_sorted_and_filtered(self, tmp_path: Path) -> None:
        write(tmp_path / "d" / "b.yml", ROLE.replace("name: r,", "name: r2,"))
        write(tmp_path / "d" / "a.yaml", ROLE)
        write(
            tmp_path / "d" / "sub" / "c.json",
            json.dumps(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": "c"},
                }
            ),
        )
        write(tmp_path / "d" / "notes.txt", "not: [yaml")
        write(tmp_path / "d" / "README.md", "# nothing")
        m = load_manifests([tmp_path / "d"])
        assert [Path(s).name for s in m.sources] == ["a.yaml", "b.yml", "c.json"]
        assert [o.name for o in m.objects] == ["r", "r2", "c"]

    def test_stdin(self, tmp_path: Path) -> None:
        m = load_manifests(["-"], stdin=io.StringIO(ROLE + "---\n" + BINDING))
        assert len(m.objects) == 2 and m.sources == ("-",)
        js = json.dumps({"apiVersion": "v1", "kind": "List", "items": []})
        assert load_manifests(["-"], stdin=io.StringIO(js)).objects == ()
        # A YAML flow mapping that is not JSON still loads.
        flow = "{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, metadata: {name: f}}"
        assert load_manifests(["-"], stdin=io.StringIO(flow)).objects == (rbac.ClusterRole("f"),)
        f = write(tmp_path / "x.yaml", ROLE)
        assert len(load_manifests([f, "-"], stdin=io.StringIO(BINDING)).objects) == 2

    def test_stdin_only_once(self) -> None:
        assert "only once" in error_of(["-", "-"], stdin=io.StringIO("")).message

    def test_missing_path_and_empty_directory(self, tmp_path: Path) -> None:
        assert error_of([tmp_path / "nope.yaml"]).message.endswith("no such file or directory")
        (tmp_path / "empty").mkdir()
        assert "no *.yaml" in error_of([tmp_path / "empty"]).message
        assert "no manifest files" in error_of([]).message


class TestErrors:
    """Malformed input is exit code 2, one line, naming the file and the document."""

    @pytest.mark.parametrize(
        ("text", "where", "problem"),
        [
            (ROLE + "---\nkind: [unclosed\n", "document 1", "line"),
            (
                ROLE + "---\n" + ROLE.replace("kind: Role", "kind: Role\nkind: Role"),
                "document 1",
                "duplicate key 'kind'",
            ),
            (
                "---\n- a\n- b\n",
                "document 0",
                "expected a Kubernetes object (a mapping), got a list",
            ),
            ("apiVersion: v1\nmetadata: {}\n", "document 0", "kind is missing"),
            ("kind: Role\nmetadata: {}\n", "document 0", "apiVersion is missing"),
            (
                ROLE.replace("verbs: [get]", "verbs: get"),
                "document 0",
                "Role ns/r: rules[0].verbs must be a list of strings",
            ),
            (
                ROLE.replace("rbac.authorization.k8s.io/v1", "rbac.authorization.k8s.io/v1beta1"),
                "document 0",
                "removed in Kubernetes 1.22",
            ),
            (ROLE.replace("kind: Role", "kind: Roles"), "document 0", "unknown kind Roles"),
            ("apiVersion: v1\nkind: Namespace\nmetadata: {}\n", "document 0", "metadata.name"),
            (
                "apiVersion: v1\nkind: List\nitems:\n- "
                + ROLE.replace("\n", "\n  ").replace("[get]", "[1]"),
                "document 0, items[0]",
                "rules[0].verbs must be a list of strings",
            ),
            (
                "a: !!python/object/apply:os.system ['true']\n",
                "document 0",
                "could not determine a constructor",
            ),
            ("a: &x [1]\n" + "".join(f"b{i}: *x\n" for i in range(101)), "document 0", "aliases"),
        ],
    )
    def test_yaml_errors(self, tmp_path: Path, text: str, where: str, problem: str) -> None:
        f = write(tmp_path / "bad.yaml", text)
        err = error_of([f])
        assert err.exit_code == ExitCode.USAGE == 2
        assert err.source == str(f)
        assert err.where == where
        assert problem in err.problem
        assert "\n" not in err.one_line() and "Traceback" not in err.one_line()

    @pytest.mark.parametrize(
        ("text", "where", "problem"),
        [
            ('{"kind": "Role", "kind": "Role"}', "document 0", "duplicate key 'kind'"),
            (NS_JSON + ' {"b": ', "document 1", "line 1 column"),
            ('{"a": NaN}', "document 0", "NaN is not valid JSON"),
        ],
    )
    def test_json_errors(self, tmp_path: Path, text: str, where: str, problem: str) -> None:
        f = write(tmp_path / "bad.json", text)
        err = error_of([f])
        assert (err.source, err.where) == (str(f), where)
        assert problem in err.problem

    def test_stdin_errors_name_stdin(self) -> None:
        err = error_of(["-"], stdin=io.StringIO('{"kind": "Role", "kind": "X"}'))
        assert err.source == "-" and "duplicate key" in err.problem

    def test_not_utf8(self, tmp_path: Path) -> None:
        f = tmp_path / "bin.yaml"
        f.write_bytes(b"\xff\xfe\x00")
        assert "not UTF-8" in error_of([f]).message


class TestSemantics:
    def test_namespace_defaults_with_a_warning(self, tmp_path: Path) -> None:
        f = write(tmp_path / "a.yaml", ROLE.replace(", namespace: ns", ""))
        m = load_manifests([f], default_namespace="team")
        assert m.objects == (
            rbac.Role("r", "team", (rbac.PolicyRule(("get",), ("",), ("pods",)),)),
        )
        assert m.warnings == (
            "1 namespaced object(s) have no metadata.namespace (Role r); assumed 'team', "
            "as kubectl apply without -n",
        )

    def test_duplicates_last_wins_with_warning(self, tmp_path: Path) -> None:
        f = write(tmp_path / "a.yaml", ROLE + "---\n" + ROLE.replace("[get]", "[list]"))
        m = load_manifests([f])
        state = rbac.RbacState(m.objects)
        assert (state.role("ns", "r") or rbac.Role("", "")).rules[0].verbs == ("list",)
        assert len(m.warnings) == 1 and "defined twice" in m.warnings[0]
        assert "document 0" in m.warnings[0] and "document 1" in m.warnings[0]

    def test_cluster_scoped_object_namespace_is_ignored(self) -> None:
        text = (
            "apiVersion: rbac.authorization.k8s.io/v1\n"
            "kind: ClusterRole\n"
            "metadata: {name: c, namespace: default}\n"
        )
        assert parse_text(text, "x").objects == (rbac.ClusterRole("c"),)

    def test_skypilot_manifest_loads(self) -> None:
        m = load_manifests([ROOT / "tests" / "manifests" / "create-sky-sa.yaml"])
        assert ("default", "sky-sa") in m.service_accounts
        assert "skypilot-system" in m.namespaces
        kinds = sorted({o.kind for o in m.objects})
        assert kinds == ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]


def test_offline_path_never_imports_kubernetes() -> None:
    code = (
        "import sys, skycheck.manifests, skycheck.rbac, skycheck.review.offline\n"
        "skycheck.rbac.RbacState.with_bootstrap([])\n"
        "bad = [m for m in sys.modules if m == 'kubernetes' or m.startswith('kubernetes.')]\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def _synthetic(n: int) -> str:
    docs = []
    for i in range(n // 4):
        ns = f"ns-{i % 50}"
        docs.append(f"""apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: role-{i}, namespace: {ns}, labels: {{app: sky}}}}
rules:
- apiGroups: [""]
  resources: ["pods", "pods/exec", "pods/log"]
  verbs: ["get", "list", "watch", "create"]
""")
        docs.append(f"""apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: rb-{i}, namespace: {ns}}}
subjects:
- {{kind: ServiceAccount, name: sa-{i}, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: role-{i}}}
""")
        docs.append(f"""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: cr-{i}}}
rules:
- {{apiGroups: [""], resources: [nodes], verbs: [get, list]}}
- {{nonResourceURLs: ["/metrics*"], verbs: [get]}}
""")
        docs.append(f"""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: crb-{i}}}
subjects: [{{kind: User, name: user-{i}, apiGroup: rbac.authorization.k8s.io}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cr-{i}}}
""")
    return "---\n".join(docs)


def test_ten_thousand_objects_load_fast(tmp_path: Path) -> None:
    f = write(tmp_path / "big.yaml", _synthetic(10_000))
    start = time.perf_counter()
    m = load_manifests([f])
    spent = time.perf_counter() - start
    assert len(m.objects) == 10_000
    # About 1.1 s here (PyYAML's C parser); the bound only catches a super-linear slip.
    assert spent < 15.0, f"{spent:.1f}s"

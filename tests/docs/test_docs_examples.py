"""The docs' examples run, so they cannot rot.

Every ``console``, ``bash`` and ``shell`` block of README.md and docs/*.md (except the
generated reference pages) is run against the real control plane, in a world built to
match what the docs describe (see ``docs_world``). Each command must exit with a code its
doc claims, print no traceback, and print exactly the output its doc shows. The
conventions are in ``tests/docs/_markdown.py``; commands that cannot run here are in
``SKIP``, each with its reason. YAML blocks must parse, and those holding Kubernetes
objects must pass ``kubectl apply --dry-run=server``.

The output samples of docs/outputs.md come from scripts/gen_docs.py; the unit tests here
check that the CLI prints exactly those files.
"""

from __future__ import annotations

import base64
import difflib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.docs import _markdown as md

ROOT = md.ROOT
SAMPLES = ROOT / "docs" / "samples"
VENV_BIN = Path(sys.executable).parent

# Commands the docs show that cannot run in this test: regex on the command -> reason.
HELM_RENDERED = Path(__file__).parent.parent / "manifests" / "helm" / "skypilot-api-server.yaml"
SKIP: dict[str, str] = {
    r"^make (demo|test)\b": "builds the project and starts its own control plane; CI runs "
    "make test, and tests/integration/test_newcomer.py runs the demo",
    r"^kustomize\b": "kustomize is not part of the test environment",
    r"^kubectl apply -f deploy/": "tests/integration/test_deploy.py applies deploy/ (and the "
    "PrometheusRule needs the Prometheus Operator's CRD)",
    r"^kubectl (wait|logs) .*job/skycheck": "the test control plane runs no kubelet and no "
    "Job controller, so the Job's pod never runs",
}
# Contexts of the docs' kubeconfig: all the test cluster's admin, the first is current.
CONTEXTS = ("dev", "prod", "staging")
# Namespaces the docs use; the sample manifest makes skypilot-system.
NAMESPACES = ("default", "ml", "ingress-nginx", "skypilot-system")
MANAGED = "app.kubernetes.io/managed-by=skycheck"
MUTATES = re.compile(r"\bkubectl\s+(apply|create|delete|replace|patch|label|auth\s+reconcile)\b")
RETRIES = 8  # RBAC caches lag a moment behind writes (docs/troubleshooting.md)


def _skip_reason(command: str) -> str | None:
    first = command.strip()
    for pattern, reason in SKIP.items():
        if re.search(pattern, first):
            return reason
    return None


def _runnable_blocks() -> list[md.Block]:
    return [b for b in md.all_blocks() if b.lang in md.RUNNABLE]


def _console_commands() -> list[md.Command]:
    return [c for b in _runnable_blocks() if b.lang == "console" for c in md.commands(b)]


def _yaml_blocks() -> list[md.Block]:
    return [b for b in md.all_blocks() if b.lang in ("yaml", "yml")]


def _documents(block: md.Block) -> list[Any]:
    return [d for d in yaml.safe_load_all(block.text) if d is not None]


def _is_kubernetes(doc: Any) -> bool:
    return isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc


# --- no cluster: the conventions hold ---------------------------------------------------


def test_every_skycheck_command_claims_its_exit_code():
    missing = [
        f"{c.where}: {c.shown}"
        for c in _console_commands()
        if md.mentions_skycheck(c.text) and c.claim is None and not _skip_reason(c.text)
    ]
    assert not missing, "add '# exit N' to:\n" + "\n".join(missing)


def test_console_blocks_have_commands():
    empty = [b.where for b in _runnable_blocks() if b.lang == "console" and not md.commands(b)]
    assert not empty, f"console blocks without a '$ ' command: {empty}"


def test_every_skip_entry_is_used():
    commands = [c.text for c in _console_commands()]
    unused = [p for p in SKIP if not any(re.search(p, c.strip()) for c in commands)]
    assert not unused, f"SKIP entries that match no command in the docs: {unused}"


@pytest.mark.parametrize("block", _yaml_blocks(), ids=lambda b: b.where)
def test_yaml_blocks_parse(block):
    _documents(block)  # raises on invalid YAML


def test_named_files_are_unique():
    seen: dict[str, md.Block] = {}
    for block in _yaml_blocks():
        name = md.file_name(block)
        if name is None:
            continue
        other = seen.setdefault(name, block)
        assert other is block or other.text == block.text, (
            f"{block.where} and {other.where} both define {name} differently"
        )


def test_output_matching():
    assert md.output_matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert md.output_matches(["a", "..."], ["a"])
    assert not md.output_matches(["a", "d"], ["a", "b", "d"])
    assert not md.output_matches(["a"], ["a", "b"])


@pytest.mark.parametrize("fmt", ["table", "json", "yaml", "junit", "sarif", "markdown", "github"])
def test_output_samples_are_what_the_cli_prints(fmt, tmp_path, monkeypatch, capsys):
    from scripts.gen_docs import SAMPLE_ARGS, SAMPLE_FILES, SAMPLE_FIX, SAMPLE_MANIFEST
    from skycheck.cli import run

    shutil.copy(SAMPLES / SAMPLE_MANIFEST, tmp_path / SAMPLE_MANIFEST)
    monkeypatch.chdir(tmp_path)
    extra = ["--fix", SAMPLE_FIX] if fmt == "table" else ["-o", fmt]
    code = run([*SAMPLE_ARGS, *extra])
    out = capsys.readouterr()
    assert code == 1, out.err
    assert out.out == (SAMPLES / SAMPLE_FILES[fmt]).read_text(encoding="utf-8")
    if fmt == "table":
        assert (tmp_path / SAMPLE_FIX).read_text() == (SAMPLES / SAMPLE_FIX).read_text()


# --- the world the docs describe --------------------------------------------------------


def _manifest_for(namespace: str) -> str:
    """The docs' sample manifest (short skypilot-system snippet) for sky-sa in ``namespace``."""
    text = (SAMPLES / "create-sky-sa.yaml").read_text(encoding="utf-8")
    if namespace == "default":
        return text
    text = text.replace("namespace: default", f"namespace: {namespace}")
    for name in (
        "sky-sa-cluster-role-binding",
        "sky-sa-cluster-role",
        "skypilot-system-service-account-role",
        "sky-sa-skypilot-system-role-binding",
        "sky-sa-role-ingress-nginx",
        "sky-sa-rolebinding-ingress-nginx",
    ):
        text = re.sub(rf"name: {name}\b", f"name: {name}-{namespace}", text)
    return text


def _without_namespaces(text: str) -> str:
    docs = [d for d in yaml.safe_load_all(text) if d and d.get("kind") != "Namespace"]
    return yaml.safe_dump_all(docs)


@dataclass
class World:
    cluster: Any
    template: Path  # files the examples use, copied afresh for every block
    env: dict[str, str]
    baseline: tuple[str, ...]  # manifests applied as the starting state

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, input=input, check=True)

    def reset(self) -> None:
        """Back to the starting state after a block that changed the cluster."""
        self.kubectl(
            "delete", "clusterroles,clusterrolebindings,roles,rolebindings", "--all-namespaces",
            "-l", MANAGED, "--ignore-not-found", "--wait=false",
        )  # fmt: skip
        self.kubectl("delete", "job", "skycheck", "-n", "default", "--ignore-not-found")
        for text in self.baseline:
            self.kubectl("apply", "-f", "-", input=text)

    def workdir(self, tmp: Path) -> Path:
        work = tmp / "work"
        shutil.copytree(self.template, work, symlinks=True)
        return work


def _kubeconfigs(cluster: Any, work: Path, bin_dir: Path) -> None:
    admin = yaml.safe_load(cluster.admin_kubeconfig.read_text())
    ctx = admin["contexts"][0]["context"]
    main = dict(admin)
    main["contexts"] = [{"name": n, "context": dict(ctx)} for n in CONTEXTS]
    main["current-context"] = CONTEXTS[0]
    (work / "kubeconfig").write_text(yaml.safe_dump(main, sort_keys=False))
    (work / "ci.kubeconfig").write_text(yaml.safe_dump(main, sort_keys=False))
    # A cluster that is down (nothing listens on port 1).
    (work / "dead.kubeconfig").write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dead-ctx\n"
        "clusters: [{name: dead, cluster: {server: 'https://127.0.0.1:1', "
        "insecure-skip-tls-verify: true}}]\n"
        "users: [{name: dead-user, user: {token: not-a-real-token}}]\n"
        "contexts: [{name: dead-ctx, context: {cluster: dead, user: dead-user}}]\n"
    )
    # GKE-style exec authentication; the "plugin" hands out the admin's token.
    gke = dict(admin)
    gke["contexts"] = [{"name": "gke", "context": {"cluster": ctx["cluster"], "user": "gke"}}]
    gke["current-context"] = "gke"
    gke["users"] = [
        {
            "name": "gke",
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "gke-gcloud-auth-plugin",
                    "interactiveMode": "Never",
                    "provideClusterInfo": True,
                }
            },
        }
    ]
    (work / "gke.kubeconfig").write_text(yaml.safe_dump(gke, sort_keys=False))
    token = base64.b64encode(cluster.admin_token.encode()).decode()
    # helm is not part of the test environment: a stand-in prints what `helm template` of
    # SkyPilot's chart renders (the project's fixture, written from reading the chart).
    helm = bin_dir / "helm"
    helm.write_text(f"#!/bin/sh\ncat {HELM_RENDERED}\n")
    helm.chmod(0o755)
    plugin = bin_dir / "gke-gcloud-auth-plugin"
    plugin.write_text(
        "#!/bin/sh\n"
        f"token=$(echo {token} | base64 -d)\n"
        'printf \'{"apiVersion": "client.authentication.k8s.io/v1beta1", '
        '"kind": "ExecCredential", "status": {"token": "%s"}}\' "$token"\n'
    )
    plugin.chmod(0o755)


def _existing_namespaces(cluster: Any) -> set[str]:
    """The docs' namespaces that exist, after waiting out any that are being deleted."""
    found = set()
    for name in NAMESPACES:
        body = cluster.get(f"/api/v1/namespaces/{name}")
        if body is not None and body.get("status", {}).get("phase") == "Terminating":
            # A previous run on a reused cluster deleted it without waiting.
            cluster.delete_namespace(name, wait=True)
            body = None
        if body is not None:
            found.add(name)
    return found


@pytest.fixture(scope="module")
def docs_world(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The setup the docs assume, on the test control plane.

    - SkyPilot's create-sky-sa.yaml with the docs' short skypilot-system snippet (the
      manifest of docs/samples) applied for sky-sa in ``default`` and in ``ml``, and the
      namespaces ``skypilot-system`` and ``ingress-nginx``;
    - a kubeconfig (``$KUBECONFIG``) with contexts dev (current), prod and staging, all the
      cluster's admin, so "the caller" is the admin; ``ci.kubeconfig`` (the same),
      ``dead.kubeconfig`` (a cluster that is down), ``gke.kubeconfig`` (exec auth);
    - in the working directory: create-sky-sa.yaml, rbac/ and deploy/rbac/ (the manifest
      for ``ml`` and ``default``), and every file a docs YAML block names;
    - a home directory with no ~/.sky/config.yaml.
    """
    base = tmp_path_factory.mktemp("docs-world")
    template, home, bin_dir = base / "template", base / "home", base / "bin"
    for d in (template / "rbac", template / "deploy" / "rbac", home, bin_dir):
        d.mkdir(parents=True)
    default_manifest, ml_manifest = _manifest_for("default"), _manifest_for("ml")
    (template / "create-sky-sa.yaml").write_text(default_manifest)
    (template / "rbac" / "sky-sa.yaml").write_text(ml_manifest)
    (template / "deploy" / "rbac" / "create-sky-sa.yaml").write_text(default_manifest)
    for block in _yaml_blocks():
        name = md.file_name(block)
        if name:
            target = template / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text)
    _kubeconfigs(cluster, template, bin_dir)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYPILOT_", "KUBE"))}
    env.update(
        HOME=str(home),
        KUBECONFIG=str(template / "kubeconfig"),
        KUBECACHEDIR=str(base / "kube-cache"),
        GITHUB_STEP_SUMMARY=str(base / "step-summary.md"),
        PATH=os.pathsep.join(
            [str(bin_dir), str(cluster.kubectl_path.parent), str(VENV_BIN), env.get("PATH", "")]
        ),
    )
    before = _existing_namespaces(cluster)
    for ns in ("ml", "ingress-nginx"):
        cluster.create_namespace(ns, exist_ok=True)
    world = World(cluster, template, env, (default_manifest, ml_manifest))
    world.reset()
    try:
        yield world
    finally:
        # Leave the shared cluster as we found it: later tests use default/sky-sa and
        # apply create-sky-sa.yaml themselves (which fails on a terminating namespace).
        world.kubectl("delete", "job", "skycheck", "-n", "default", "--ignore-not-found")
        world.kubectl(
            "delete", "clusterroles,clusterrolebindings,roles,rolebindings", "--all-namespaces",
            "-l", MANAGED, "--ignore-not-found",
        )  # fmt: skip
        for text in world.baseline:
            world.kubectl(
                "delete", "--ignore-not-found", "-f", "-", input=_without_namespaces(text)
            )
        # ml is the docs' own; skypilot-system and ingress-nginx stay (other tests create
        # them with exist_ok, and deleting them would leave them terminating for a while).
        if "ml" not in before:
            cluster.delete_namespace("ml")


# --- running the examples ---------------------------------------------------------------


def _run(text: str, work: Path, env: dict[str, str]) -> tuple[int, str]:
    proc = subprocess.run(
        ["bash", "-c", text],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, proc.stdout


def _check_command(cmd: md.Command, work: Path, env: dict[str, str]) -> str | None:
    """Run one documented command; return what is wrong with it, or None."""
    expected = cmd.expected()
    code, output = _run(cmd.text, work, env)
    retry_lag = md.mentions_skycheck(cmd.text) and expected <= {0, 1}
    for attempt in range(RETRIES):
        if code in expected or not (retry_lag and code in (0, 1)):
            break
        time.sleep(0.1 * (attempt + 1))
        code, output = _run(cmd.text, work, env)
    problems = []
    if "Traceback" in output:
        problems.append("printed a traceback")
    if code not in expected:
        claimed = " or ".join(map(str, sorted(expected)))
        problems.append(f"exited {code}, the docs say {claimed}")
    lines = output.splitlines()
    shown = ""
    if cmd.output_shown and not md.output_matches(cmd.output, lines):
        problems.append("printed other output than the docs show")
        diff = difflib.unified_diff(cmd.output, lines, "docs", "actual", lineterm="", n=2)
        shown = "\n  --- diff (a '...' line in the docs matches any lines):\n" + "\n".join(
            f"  {line}" for line in diff
        )
    if problems:
        return (
            f"{cmd.where}: $ {cmd.text}\n  " + "; ".join(problems) + shown
            + "\n  --- output:\n" + "\n".join(f"  | {line}" for line in lines[-80:])
        )  # fmt: skip
    return None


@pytest.mark.cluster
@pytest.mark.parametrize("block", _runnable_blocks(), ids=lambda b: b.where)
def test_docs_example_runs_as_documented(block, docs_world, tmp_path):
    work = docs_world.workdir(tmp_path)
    env = docs_world.env
    failures: list[str] = []
    mutated = False
    try:
        if block.lang in md.SCRIPT_LANGS:
            mutated = bool(MUTATES.search(block.text))
            code, output = _run(block.text, work, env)
            expected = md.script_claim(block)
            if code not in expected or "Traceback" in output:
                failures.append(f"{block.where}: script exited {code}\n{output[-3000:]}")
        else:
            skipped = []
            for cmd in md.commands(block):
                reason = _skip_reason(cmd.text)
                if reason:
                    skipped.append(f"{cmd.shown.split('#')[0].strip()} ({reason})")
                    continue
                mutated = mutated or bool(MUTATES.search(cmd.text))
                problem = _check_command(cmd, work, env)
                if problem:
                    failures.append(problem)
            if skipped and len(skipped) == len(md.commands(block)):
                pytest.skip("not runnable here: " + "; ".join(skipped))
    finally:
        if mutated:
            docs_world.reset()
    assert not failures, "\n\n".join(failures)


def _kubernetes_yaml_blocks() -> list[md.Block]:
    out = []
    for block in _yaml_blocks():
        try:
            docs = _documents(block)
        except yaml.YAMLError:
            continue  # test_yaml_blocks_parse reports it
        if any(_is_kubernetes(d) for d in docs):
            out.append(block)
    return out


@pytest.mark.cluster
@pytest.mark.parametrize("block", _kubernetes_yaml_blocks(), ids=lambda b: b.where)
def test_kubernetes_yaml_passes_server_dry_run(block, docs_world):
    objects = [d for d in _documents(block) if _is_kubernetes(d)]
    result = docs_world.cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(objects)
    )
    assert result.returncode == 0, f"{block.where}:\n{result.stderr}"

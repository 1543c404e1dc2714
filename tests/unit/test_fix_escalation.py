"""Fixes restrict RBAC writes to SkyPilot's objects by name, and say when they still amount
to cluster-admin. The apiserver's side is in tests/integration/test_escalation_names.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from skycheck.catalogue import NAMELESS_VERBS, bind, load_catalogue, rules_dir
from skycheck.cli import run
from skycheck.errors import CatalogueError
from skycheck.fixit import build_manifest, compact, escalation_routes
from skycheck.models import Subject

SA = Subject.service_account("sky-sa", "team")
WARNING = "amount to cluster-admin"


def _bootstrap(namespace: str = "team"):
    return bind(load_catalogue(), namespace, ["rbac-bootstrap"], ["rbac-bootstrap"])


def test_named_verbs_are_checked_per_name_and_nameless_ones_are_not() -> None:
    checks = {(r.namespace, r.resource, r.verb, r.name) for r in _bootstrap()}
    assert ("team", "roles", "patch", "skypilot-service-account-role") in checks
    assert ("team", "roles", "create", "") in checks
    assert ("team", "roles", "list", "") in checks
    # escalate is checked with the writing request's name, and a create has none.
    assert ("team", "roles", "escalate", "") in checks
    assert not any(v == "patch" and not n for _, _, v, n in checks)


def test_namespace_placeholder_is_the_checked_namespace() -> None:
    names = {r.name for r in _bootstrap("ml") if r.resource == "rolebindings"}
    assert "skypilot-system-service-account-role-binding-ml" in names
    assert not any("{" in n for n in names)


def test_check_ids_stay_unique_with_names() -> None:
    reqs = bind(load_catalogue(), "team", load_catalogue().names, ())
    assert len({r.id for r in reqs}) == len(reqs)


def test_fix_restricts_patch_to_skypilots_objects_and_warns_in_the_file() -> None:
    text = build_manifest(SA, _bootstrap())
    assert text is not None
    assert text.startswith("# WARNING: this fix grants rights that amount to cluster-admin")
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        for rule in doc.get("rules", []):
            rbac_writes = {"patch", "update", "bind"} & set(rule["verbs"])
            if rule["apiGroups"] == ["rbac.authorization.k8s.io"] and rbac_writes:
                assert rule.get("resourceNames"), rule
    roles = next(
        d for d in docs if d["kind"] == "Role" and d["metadata"]["namespace"] == "skypilot-system"
    )
    named = [r for r in roles["rules"] if r.get("resourceNames") and "roles" in r["resources"]]
    assert named[0]["resourceNames"] == [
        "skypilot-service-account-system-role",
        "skypilot-system-service-account-role",
    ]  # one rule for both names (compaction step 3)


def test_routes_name_what_remains_unrestricted() -> None:
    routes = escalation_routes(_bootstrap())
    assert any(r.startswith("escalate roles.rbac.authorization.k8s.io in team") for r in routes)
    assert any(
        r.startswith("create rolebindings.rbac.authorization.k8s.io in team") for r in routes
    )
    assert not any(r.startswith("patch") for r in routes)


def test_core_fix_has_no_escalation_route() -> None:
    reqs = bind(load_catalogue(), "team", ["core"], ["core"])
    assert escalation_routes(reqs) == ()
    assert not (build_manifest(SA, reqs) or "").startswith("# WARNING")


def test_named_rules_compact_without_widening() -> None:
    rules = compact(_bootstrap())
    for rule in rules:
        if rule.names:
            # a named grant never carries a verb whose requests have no name
            assert not set(rule.verbs) & NAMELESS_VERBS, rule


@pytest.mark.parametrize(
    ("extra", "expect_warning"),
    [
        (
            [
                "-f",
                "rbac-bootstrap",
                "--remote-identity",
                "SERVICE_ACCOUNT",
                "--fail-on",
                "optional",
            ],
            True,
        ),
        ([], False),
    ],
)
def test_report_warns_in_json_and_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], expect_warning: bool
) -> None:
    m = tmp_path / "sa.yaml"
    m.write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sky-sa, namespace: team}\n"
    )
    assert run(["--manifests", str(m), "--sa", "sky-sa", "-n", "team", "-o", "json", *extra]) == 1
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert any(WARNING in w for w in doc["warnings"]) is expect_warning
    assert (WARNING in err) is expect_warning
    assert doc["fix"].startswith("# WARNING") is expect_warning


def test_manifest_command_warns_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    # SkyPilot's own account bootstraps its roles, so rbac-bootstrap concerns it.
    argv = ["manifest", "--sa", "skypilot-service-account", "-n", "team", "-f", "rbac-bootstrap"]
    assert run(argv) == 0
    out, err = capsys.readouterr()
    assert out.startswith("# WARNING") and WARNING in err


def test_manifest_for_a_named_remote_identity_leaves_bootstrap_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An account configured as remote_identity never creates SkyPilot's roles."""
    assert run(["manifest", "--sa", "sky-sa", "-n", "team", "-f", "rbac-bootstrap"]) == 0
    out, err = capsys.readouterr()
    assert "rbac-bootstrap left out" in err and WARNING not in err
    assert "escalate" not in out and "clusterrolebindings" not in out


def test_names_and_name_exclude_each_other(tmp_path: Path) -> None:
    d = tmp_path / "rules"
    shutil.copytree(rules_dir(), d)
    f = d / "rbac-bootstrap.yaml"
    text = f.read_text(encoding="utf-8")
    f.write_text(
        text.replace(
            "    names: [skypilot-service-account-role]\n", "    names: [a]\n    name: b\n", 1
        ),
        encoding="utf-8",
    )
    with pytest.raises(CatalogueError, match="name or names"):
        load_catalogue(d)


def test_names_must_be_object_names(tmp_path: Path) -> None:
    d = tmp_path / "rules"
    shutil.copytree(rules_dir(), d)
    f = d / "rbac-bootstrap.yaml"
    text = f.read_text(encoding="utf-8")
    f.write_text(
        text.replace("names: [skypilot-service-account-role]", "names: [Bad_Name]", 1),
        encoding="utf-8",
    )
    with pytest.raises(CatalogueError, match=r"names\[0\]"):
        load_catalogue(d)

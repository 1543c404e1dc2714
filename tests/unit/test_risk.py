"""The risk table (rules/risk.yaml): valid, and rating what Kubernetes' good practices name."""

from __future__ import annotations

import jsonschema
import pytest

from skycheck import yamlio
from skycheck.catalogue import load_catalogue, rules_dir
from skycheck.errors import CatalogueError
from skycheck.excess_types import Risk
from skycheck.risk import load_risk_table, parse_table, risk_path

RBAC = "rbac.authorization.k8s.io"
ADMISSION = "admissionregistration.k8s.io"


def test_the_table_is_valid_per_jsonschema_too():
    import json

    schema = json.loads((rules_dir() / "risk.schema.json").read_text())
    jsonschema.validate(yamlio.load_one(risk_path().read_text(), "risk.yaml"), schema)


def test_the_table_is_not_a_feature():
    assert "risk" not in load_catalogue().names


@pytest.mark.parametrize(
    ("verb", "group", "resource", "sub", "wide", "risk"),
    [
        ("*", "*", "*", "", False, Risk.CRITICAL),
        ("get", "", "secrets", "", False, Risk.HIGH),
        ("list", "", "secrets", "", True, Risk.CRITICAL),
        ("create", "", "secrets", "", False, Risk.HIGH),
        ("create", "", "pods", "", False, Risk.HIGH),
        ("create", "apps", "deployments", "", True, Risk.CRITICAL),
        ("create", "", "pods", "exec", False, Risk.HIGH),
        ("get", "", "pods", "attach", False, Risk.HIGH),
        ("escalate", RBAC, "clusterroles", "", False, Risk.CRITICAL),
        ("bind", RBAC, "roles", "", False, Risk.CRITICAL),
        ("impersonate", "", "users", "", False, Risk.CRITICAL),
        ("impersonate", "authentication.k8s.io", "userextras", "scopes", False, Risk.CRITICAL),
        ("create", "", "serviceaccounts", "token", False, Risk.HIGH),
        ("get", "", "nodes", "proxy", False, Risk.CRITICAL),
        (
            "update",
            "certificates.k8s.io",
            "certificatesigningrequests",
            "approval",
            False,
            Risk.HIGH,
        ),
        (
            "create",
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            "",
            False,
            Risk.CRITICAL,
        ),
        (
            "patch",
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "",
            False,
            Risk.HIGH,
        ),
        ("create", "", "persistentvolumes", "", False, Risk.HIGH),
        ("patch", "", "namespaces", "", False, Risk.HIGH),
        ("get", "", "pods", "", False, Risk.LOW),
        ("delete", "", "services", "", False, Risk.MEDIUM),
    ],
)
def test_good_practice_grants_are_rated(verb, group, resource, sub, wide, risk):
    got, entry, reason = load_risk_table().classify(verb, group, resource, sub, wide)
    assert got is risk, (entry, reason)
    if entry not in ("default-read", "default-write"):
        assert reason


def test_a_bad_table_names_the_key(tmp_path):
    text = risk_path().read_text().replace("risk: critical", "risk: severe", 1)
    with pytest.raises(CatalogueError, match=r"entries\[0\]\.risk"):
        parse_table(text, "risk.yaml")
    doubled = risk_path().read_text().replace("id: bind", "id: escalate", 1)
    with pytest.raises(CatalogueError, match="defined twice"):
        parse_table(doubled, "risk.yaml")

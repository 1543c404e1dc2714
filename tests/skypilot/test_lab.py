"""The lab itself: SkyPilot runs in it, its requests are recorded, the inventory is fresh."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.skypilot import inventory
from tests.skypilot.conftest import CI_VERSION
from tests.skypilot.lab import Lab
from tests.skypilot.runner import OPERATIONS, Outcome, Permission, run_operation

pytestmark = pytest.mark.skypilot


def test_sky_check_as_cluster_admin_lists_nodes_and_pods(skypilot_lab: Lab) -> None:
    namespace = skypilot_lab.fresh_namespace("smoke")
    who = skypilot_lab.identity("smoke-admin", namespace=namespace, cluster_admin=True)

    run = run_operation(skypilot_lab, CI_VERSION, OPERATIONS["check"], who, {})

    assert run.outcome is Outcome.COMPLETED, run.tail
    assert run.forbidden == ()
    assert Permission("cluster", "", "nodes", "", "list") in run.permissions
    assert Permission("namespace", "", "pods", "", "list") in run.permissions


def test_sky_check_without_permissions_is_forbidden(skypilot_lab: Lab) -> None:
    namespace = skypilot_lab.fresh_namespace("smoke")
    who = skypilot_lab.identity("smoke-nobody", namespace=namespace)

    run = run_operation(skypilot_lab, CI_VERSION, OPERATIONS["check"], who, {})

    # sky check exits 0 even when it disables Kubernetes; the runner reads its output.
    assert run.outcome is Outcome.FORBIDDEN, run.tail
    assert run.forbidden
    assert {r.resource for r in run.forbidden} <= {"nodes", "pods"}


def test_committed_inventory_matches_a_fresh_check_scenario(
    skypilot_lab: Lab, tmp_path: Path
) -> None:
    committed = json.loads((inventory.OUTPUT_DIR / f"skypilot-{CI_VERSION}.json").read_text())

    fresh_path = inventory.regenerate(
        CI_VERSION, scenarios=["check"], output_dir=tmp_path, lab=skypilot_lab
    )

    fresh = json.loads(fresh_path.read_text())
    assert fresh["scenarios"]["check"] == committed["scenarios"]["check"], (
        "rules/observed is stale: python -m tests.skypilot inventory --version " + CI_VERSION
    )
    assert fresh["lab"] == committed["lab"]

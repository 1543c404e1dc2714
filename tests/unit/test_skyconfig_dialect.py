"""Each SkyPilot release line reads ~/.sky/config.yaml as its own code does.

The differences were found by the setup differential (tests/parity) against each proven
release's own functions; these tests pin each one in skycheck's reading, so a change that
loses one fails here without a SkyPilot venv.
"""

from __future__ import annotations

import pytest

from skycheck import skyconfig
from skycheck.errors import ConfigError
from skycheck.skyconfig_dialect import BEFORE_0_10_5, BEFORE_0_13, CURRENT, for_version


def _config(text: str) -> skyconfig.SkyConfig:
    return skyconfig.parse_sky_config_text(text, "config.yaml")


@pytest.mark.parametrize(
    ("version", "dialect"),
    [
        ("0.14.1", CURRENT),
        ("1.0.0.dev20261027", CURRENT),
        ("0.13.0", CURRENT),
        ("0.12.3.post1", BEFORE_0_13),
        ("0.10.5", BEFORE_0_13),
        ("0.10.3.post2", BEFORE_0_10_5),
        ("0.10.0", BEFORE_0_10_5),
        (None, CURRENT),
    ],
)
def test_each_release_reads_the_config_of_its_line(version, dialect):
    assert for_version(version) is dialect


def test_an_identity_map_is_matched_by_pattern_from_0_13_and_by_exact_name_before():
    cfg = _config("kubernetes:\n  remote_identity:\n    '*': star-sa\n    prod: prod-sa\n")
    assert skyconfig.derive(cfg, "prod", None).service_account == "star-sa"
    assert skyconfig.derive(cfg, "prod", None, dialect=BEFORE_0_13).service_account == "prod-sa"
    # A context without its own entry fails every launch there before 0.13.
    assert skyconfig.derive(cfg, "dev", None).service_account == "star-sa"
    with pytest.raises(ConfigError, match="matches names exactly"):
        skyconfig.derive(cfg, "dev", None, dialect=BEFORE_0_13)


def test_the_namespace_key_chooses_the_namespace_only_from_0_13():
    cfg = _config("kubernetes:\n  namespace: team-ns\n")
    assert skyconfig.derive(cfg, "prod", "kube-ns").namespace == "team-ns"
    assert skyconfig.derive(cfg, "prod", "kube-ns", dialect=BEFORE_0_13).namespace == "kube-ns"


def test_releases_before_0_10_5_reject_files_their_schema_does_not_know():
    skyconfig.refuse_for_release(_config("kubernetes:\n  namespace: team-ns\n"), BEFORE_0_13)
    with pytest.raises(ConfigError, match="no namespace key"):
        skyconfig.refuse_for_release(_config("kubernetes:\n  namespace: team-ns\n"), BEFORE_0_10_5)
    with pytest.raises(ConfigError, match="not all"):
        skyconfig.refuse_for_release(
            _config("kubernetes:\n  allowed_contexts: all\n"), BEFORE_0_10_5
        )
    skyconfig.refuse_for_release(_config("kubernetes:\n  allowed_contexts: all\n"), CURRENT)


def test_consolidation_counts_as_high_availability_only_from_0_10_5():
    cfg = _config("jobs:\n  controller:\n    consolidation_mode: true\n")
    assert skyconfig.high_availability_specified(cfg) == ("jobs",)
    assert skyconfig.high_availability_specified(cfg, BEFORE_0_10_5) == ()


def test_environment_switches_exist_only_in_the_releases_that_read_them():
    view_env = {
        "SKYPILOT_ALL_KUBERNETES_CONTEXTS_INCLUDES_IN_CLUSTER": "false",
        "SKYPILOT_ALLOW_ALL_KUBERNETES_CONTEXTS": "true",
    }
    cfg = _config("kubernetes: {}\n")
    now = skyconfig.select_contexts(cfg, ["a", "b"], "a", in_cluster=True, env=view_env)
    assert now.contexts == ("a", "b")  # every context, in-cluster left out
    before_013 = skyconfig.select_contexts(
        cfg, ["a", "b"], "a", in_cluster=True, env=view_env, dialect=BEFORE_0_13
    )
    assert before_013.contexts == ("a", "b", "in-cluster")
    before_0105 = skyconfig.select_contexts(
        cfg, ["a", "b"], "a", in_cluster=True, env=view_env, dialect=BEFORE_0_10_5
    )
    assert before_0105.contexts == ("a",)  # no allow-all variable: the current context

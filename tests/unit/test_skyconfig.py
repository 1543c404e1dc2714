"""~/.sky/config.yaml: parsing, per-context derivation, allowed contexts, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skycheck import skyconfig
from skycheck.catalogue import KNOWN_FEATURES
from skycheck.errors import ConfigError, ExitCode
from skycheck.skyconfig import (
    DEFAULT_SERVICE_ACCOUNT,
    IdentityMap,
    SkyConfig,
    contexts_to_check,
    default_config_path,
    derive,
    load_sky_config,
    parse_sky_config_text,
    select_contexts,
)

FIXTURES = Path(__file__).parent / "skyconfigs"


def _cfg(text: str, source: str = "config.yaml") -> SkyConfig:
    return parse_sky_config_text(text, source)


def _fixture(name: str) -> SkyConfig:
    config = load_sky_config(FIXTURES / name)
    assert config is not None
    return config


def _derive(text: str, context: str = "ctx", kube_ns: str | None = None, **kw: object):
    return derive(_cfg(text), context, kube_ns, **kw)  # type: ignore[arg-type]


# --- loading -----------------------------------------------------------------------------


def test_missing_default_file_is_none_but_missing_explicit_file_is_an_input_error(tmp_path):
    assert load_sky_config(tmp_path / "nope.yaml") is None
    with pytest.raises(ConfigError) as err:
        load_sky_config(tmp_path / "nope.yaml", missing_ok=False)
    assert err.value.exit_code == ExitCode.USAGE
    assert "does not exist" in err.value.one_line()


def test_empty_file_gives_skypilot_defaults():
    config = _fixture("empty.yaml")
    assert config.kubernetes == skyconfig.KubernetesSettings()
    assert config.allowed_contexts is None
    assert not config.jobs_high_availability and not config.serve_high_availability
    d = derive(config, "ctx", None)
    assert d == derive(None, "ctx", None)  # an empty file means what no file means
    assert (d.remote_identity, d.remote_identity_source) == ("SERVICE_ACCOUNT", "default")
    assert d.port_mode == "loadbalancer" and d.namespace == "default"


def test_missing_kubernetes_section_keeps_kubernetes_defaults_and_reads_controllers():
    config = _fixture("no-kubernetes.yaml")
    assert config.kubernetes == skyconfig.KubernetesSettings()
    d = derive(config, "ctx", None)
    assert d.service_account == DEFAULT_SERVICE_ACCOUNT and d.creates_service_account
    assert d.high_availability
    assert d.caller.required_features == ("core", "rbac-bootstrap", "high-availability")


def test_null_sections_are_absent_sections():
    config = _cfg("kubernetes:\njobs:\n  controller:\n")
    assert config.kubernetes == skyconfig.KubernetesSettings()
    assert not config.jobs_high_availability


def test_default_config_path_follows_skypilot_environment_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_config_path({}) == tmp_path / ".sky" / "config.yaml"
    assert default_config_path({"SKYPILOT_GLOBAL_CONFIG": "/g.yaml"}) == Path("/g.yaml")
    both = {"SKYPILOT_GLOBAL_CONFIG": "/g.yaml", "SKYPILOT_CONFIG": "/c.yaml"}
    assert default_config_path(both) == Path("/c.yaml")  # SKYPILOT_CONFIG replaces the rest


def test_config_location_names_the_variable_as_skypilot_reads_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert skyconfig.config_location({}) == (tmp_path / ".sky" / "config.yaml", None)
    # Set but empty: SKYPILOT_CONFIG still counts, SKYPILOT_GLOBAL_CONFIG does not.
    assert skyconfig.config_location({"SKYPILOT_CONFIG": ""})[1] == "SKYPILOT_CONFIG"
    assert skyconfig.config_location({"SKYPILOT_GLOBAL_CONFIG": ""})[1] is None


@pytest.mark.parametrize("variable", ["SKYPILOT_CONFIG", "SKYPILOT_GLOBAL_CONFIG"])
def test_a_missing_file_named_by_a_variable_is_exit_2_as_skypilot_refuses_to_start(
    variable, tmp_path, monkeypatch, capsys
):
    from skycheck.cli import run

    monkeypatch.setenv(variable, str(tmp_path / "gone.yaml"))
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    assert run(["--kubeconfig", str(kubeconfig)]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"named by ${variable} does not exist; SkyPilot refuses to start" in err
    assert len(err.strip().splitlines()) == 1


def test_workspaces_are_ignored_with_a_warning():
    config = _cfg("workspaces:\n  team-a:\n    kubernetes:\n      namespace: a\n")
    assert any("workspaces" in w for w in config.warnings)
    assert any("workspaces" in w for w in derive(config, "ctx", None).warnings)


def test_unknown_keys_are_ignored_like_skypilot_client_does():
    config = _cfg("kubernetes:\n  provision_timeout: 10\n  my_plugin_key: {a: 1}\naws: {}\n")
    assert config.kubernetes == skyconfig.KubernetesSettings()


# --- invalid files: one line naming the key path -------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "config.yaml: expected a mapping at the top level, got a list"),
        ("kubernetes: [a]\n", "config.yaml: kubernetes: must be a mapping, got a list"),
        (
            "kubernetes:\n  ports: nodeport\n",
            "config.yaml: kubernetes.ports: must be one of loadbalancer, ingress, podip",
        ),
        (
            "kubernetes:\n  ports: 80\n",
            "config.yaml: kubernetes.ports: must be one of loadbalancer, ingress, podip",
        ),
        (
            "kubernetes:\n  namespace: Team_A\n",
            "config.yaml: kubernetes.namespace: 'Team_A' is not a valid namespace name",
        ),
        ("kubernetes:\n  namespace: 7\n", "kubernetes.namespace: must be a string, got a number"),
        ("kubernetes:\n  namespace: ''\n", "kubernetes.namespace: must not be empty"),
        (
            "kubernetes:\n  remote_identity: 3\n",
            "kubernetes.remote_identity: must be a string or a mapping of context to service "
            "account, got a number",
        ),
        (
            "kubernetes:\n  remote_identity: service_account\n",
            "kubernetes.remote_identity: 'service_account' is neither one of SERVICE_ACCOUNT, "
            "LOCAL_CREDENTIALS, NO_UPLOAD (case matters) nor a valid service account name",
        ),
        ("kubernetes:\n  remote_identity: {}\n", "kubernetes.remote_identity: must not be empty"),
        (
            "kubernetes:\n  remote_identity:\n    prod: [a]\n",
            "kubernetes.remote_identity.prod: must be a string, got a list",
        ),
        (
            "kubernetes:\n  remote_identity:\n    prod: Bad_SA\n",
            "kubernetes.remote_identity.prod: 'Bad_SA' is neither",
        ),
        (
            "kubernetes:\n  remote_identity:\n    - {a: x, b: y}\n",
            "kubernetes.remote_identity: must be a string or a mapping of context to service "
            "account, got a list (SkyPilot rejects this file)",
        ),
        (
            "kubernetes:\n  allowed_contexts: some\n",
            "kubernetes.allowed_contexts: must be a list of context names or the string all",
        ),
        (
            "kubernetes:\n  allowed_contexts: [a, 3]\n",
            "kubernetes.allowed_contexts[1]: must be a string, got a number",
        ),
        (
            "kubernetes:\n  context_configs: [a]\n",
            "kubernetes.context_configs: must be a mapping, got a list",
        ),
        (
            "kubernetes:\n  context_configs:\n    prod: 1\n",
            "kubernetes.context_configs.prod: must be a mapping, got a number",
        ),
        (
            "kubernetes:\n  context_configs:\n    prod:\n      ports: nodeport\n",
            "kubernetes.context_configs.prod.ports: must be one of loadbalancer, ingress, podip",
        ),
        (
            "kubernetes:\n  context_configs:\n    prod:\n      remote_identity: {prod: a}\n",
            "kubernetes.context_configs.prod.remote_identity: must be a string here, got a mapping",
        ),
        (
            "kubernetes:\n  context_configs:\n    prod:\n      namespace: -x\n",
            "kubernetes.context_configs.prod.namespace: '-x' is not a valid namespace name",
        ),
        (
            "kubernetes:\n  pod_config: [a]\n",
            "kubernetes.pod_config: must be a mapping, got a list",
        ),
        (
            "kubernetes:\n  pod_config:\n    spec: x\n",
            "kubernetes.pod_config.spec: must be a mapping, got a string",
        ),
        (
            "kubernetes:\n  pod_config:\n    spec:\n      serviceAccountName: SERVICE_ACCOUNT\n",
            "kubernetes.pod_config.spec.serviceAccountName: 'SERVICE_ACCOUNT' is not a valid "
            "service account name",
        ),
        (
            "jobs:\n  controller:\n    high_availability: 'yes please'\n",
            "config.yaml: jobs.controller.high_availability: must be true or false, got a string",
        ),
        (
            "kubernetes:\n  namespace: 2024-01-01\n",
            "kubernetes.namespace: must be a string, got a date",
        ),
        (
            "serve:\n  controller: true\n",
            "config.yaml: serve.controller: must be a mapping, got a boolean",
        ),
    ],
)
def test_invalid_config_names_the_key_path(text, message):
    with pytest.raises(ConfigError) as err:
        _cfg(text)
    assert err.value.exit_code == ExitCode.USAGE
    assert message in err.value.one_line()
    assert "\n" not in err.value.one_line()


def test_error_names_the_file_as_the_user_knows_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / ".sky" / "config.yaml"
    path.parent.mkdir()
    path.write_text("kubernetes:\n  ports: nodeport\n")
    with pytest.raises(ConfigError) as err:
        load_sky_config(default_config_path({}))
    assert err.value.one_line() == (
        "~/.sky/config.yaml: kubernetes.ports: must be one of loadbalancer, ingress, podip"
    )


def test_yaml_syntax_errors_and_duplicate_keys_are_config_errors_with_a_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("kubernetes:\n  ports: ingress\n  ports: podip\n")
    with pytest.raises(ConfigError, match=r"line 3 .*duplicate key 'ports'"):
        load_sky_config(path)
    path.write_text("kubernetes: [unclosed\n")
    with pytest.raises(ConfigError, match="line"):
        load_sky_config(path)


# --- remote_identity ------------------------------------------------------------------------


@pytest.mark.parametrize("keyword", ["SERVICE_ACCOUNT", "LOCAL_CREDENTIALS", "NO_UPLOAD"])
def test_identity_keywords_run_as_skypilots_account_and_need_rbac_bootstrap(keyword):
    d = _derive(f"kubernetes:\n  remote_identity: {keyword}\n", kube_ns="team")
    assert d.remote_identity == keyword
    assert d.remote_identity_source == "kubernetes.remote_identity"
    assert d.service_account == DEFAULT_SERVICE_ACCOUNT and d.creates_service_account
    caller, account = d.identities
    assert (caller.role, caller.service_account) == ("caller", None)
    assert caller.required_features == ("core", "rbac-bootstrap")
    assert (account.role, account.service_account, account.namespace) == (
        "service-account",
        DEFAULT_SERVICE_ACCOUNT,
        "team",
    )
    # SkyPilot creates and grants its own account: checked, never gating.
    assert account.managed and account.features == ("core",) and account.required_features == ()
    assert d.features == ("core", "rbac-bootstrap")


def test_default_identity_note_says_why_in_the_users_words():
    d = derive(None, "ctx", None)
    assert (
        "remote_identity is SERVICE_ACCOUNT (default): SkyPilot creates "
        "skypilot-service-account, so the kubeconfig user needs rbac-bootstrap" in d.notes
    )


def test_custom_service_account_creates_nothing():
    d = derive(_fixture("custom-sa.yaml"), "ctx", "team")
    assert (d.remote_identity, d.service_account, d.creates_service_account) == (
        "sky-sa",
        "sky-sa",
        False,
    )
    caller, account = d.identities
    assert caller.required_features == ("core",)
    assert (account.service_account, account.namespace, account.managed) == (
        "sky-sa",
        "team",
        False,
    )
    assert account.required_features == ("core",)
    assert any("custom service account" in n and "no rbac-bootstrap" in n for n in d.notes)


def test_naming_skypilots_own_account_explicitly_still_creates_it():
    d = _derive(f"kubernetes:\n  remote_identity: {DEFAULT_SERVICE_ACCOUNT}\n")
    assert d.creates_service_account
    assert "rbac-bootstrap" in d.caller.required_features


def test_identity_map_takes_the_first_match_in_file_order():
    config = _fixture("identity-map.yaml")
    assert isinstance(config.kubernetes.remote_identity, IdentityMap)
    east = derive(config, "prod-east", None)
    assert east.service_account == "prod-sa" and not east.creates_service_account
    assert east.remote_identity_source == "kubernetes.remote_identity[prod-*]"
    assert any("'prod-*', the first matching pattern in file order" in n for n in east.notes)
    # prod-west is listed by name, but after a glob that matches it: the glob wins, as in
    # SkyPilot's loop over the mapping (sky/clouds/kubernetes.py).
    assert derive(config, "prod-west", None).service_account == "prod-sa"
    # A keyword as a map value means what it means at top level.
    dev = derive(config, "dev", None)
    assert dev.remote_identity == "SERVICE_ACCOUNT" and dev.creates_service_account


def test_identity_list_form_is_rejected_like_skypilots_schema():
    with pytest.raises(ConfigError, match="SkyPilot rejects this file"):
        _fixture("identity-list.yaml")


def test_none_is_not_a_keyword_in_skypilot_0_14_1():
    # 0.14.1 uses NONE as a service account name, which the API server refuses.
    with pytest.raises(ConfigError, match="'NONE' is neither one of"):
        _cfg("kubernetes:\n  remote_identity: NONE\n")


def test_first_matching_glob_wins_in_file_order():
    text = "kubernetes:\n  remote_identity:\n    'a*': first\n    '*': second\n    'ab*': third\n"
    assert _derive(text, context="abc").service_account == "first"
    assert _derive(text, context="xyz").service_account == "second"


def test_glob_matching_is_case_sensitive():
    text = "kubernetes:\n  remote_identity:\n    'Prod-*': a\n    'prod-*': b\n"
    assert _derive(text, context="prod-1").service_account == "b"


def test_identity_map_without_a_match_is_an_error_naming_the_key():
    with pytest.raises(ConfigError) as err:
        derive(_fixture("identity-map.yaml"), "staging", None)
    line = err.value.one_line()
    assert "identity-map.yaml: kubernetes.remote_identity: no entry matches context 'staging'" in (
        line
    )
    assert "prod-*, prod-west, dev" in line


def test_local_credentials_with_exec_auth_warns_and_only_then():
    text = "kubernetes:\n  remote_identity: LOCAL_CREDENTIALS\n"
    warned = _derive(text, context="gke", exec_auth=True).warnings
    assert any("LOCAL_CREDENTIALS" in w and "exec plugin" in w and "gke" in w for w in warned)
    assert not _derive(text, context="gke", exec_auth=False).warnings
    assert not _derive("kubernetes:\n  remote_identity: sky-sa\n", exec_auth=True).warnings
    assert not derive(None, "ctx", None, exec_auth=True).warnings


# --- pod_config.spec.serviceAccountName --------------------------------------------------------


def test_pod_config_service_account_overrides_remote_identity_and_skips_creation():
    text = (
        "kubernetes:\n  remote_identity: SERVICE_ACCOUNT\n"
        "  pod_config:\n    spec:\n      serviceAccountName: pod-sa\n"
    )
    d = _derive(text, kube_ns="team")
    assert (d.remote_identity, d.service_account, d.creates_service_account) == (
        "SERVICE_ACCOUNT",
        "pod-sa",
        False,
    )
    assert d.caller.required_features == ("core",)
    assert d.identities[1].service_account == "pod-sa"
    assert d.identities[1].required_features == ("core",)
    assert any("kubernetes.pod_config.spec.serviceAccountName is pod-sa" in n for n in d.notes)


def test_pod_config_naming_skypilots_own_account_still_creates_it():
    text = (
        "kubernetes:\n  pod_config:\n    spec:\n"
        "      serviceAccountName: skypilot-service-account\n"
    )
    assert _derive(text).creates_service_account


# --- context_configs ---------------------------------------------------------------------------


def test_context_configs_override_each_key_for_their_context_only():
    config = _fixture("multi-context.yaml")
    gpu = derive(config, "gpu-cluster", "kube-ns")
    assert (gpu.namespace, gpu.namespace_source) == (
        "gpu-team",
        "kubernetes.context_configs.gpu-cluster.namespace",
    )
    assert gpu.port_mode == "podip"
    assert gpu.remote_identity == "gpu-sa"
    assert gpu.remote_identity_source == "kubernetes.context_configs.gpu-cluster.remote_identity"
    # The context's pod_config wins over the global one, and names SkyPilot's account.
    assert gpu.service_account == DEFAULT_SERVICE_ACCOUNT and gpu.creates_service_account
    assert gpu.caller.required_features == ("core", "rbac-bootstrap", "high-availability")

    other = derive(config, "kind-dev", "kube-ns")
    assert (other.namespace, other.namespace_source) == ("sky", "kubernetes.namespace")
    assert other.port_mode == "ingress"
    assert other.service_account == "team-sa" and not other.creates_service_account
    assert other.caller.required_features == ("core", "ingress", "high-availability")
    assert other.identities[1].required_features == ("core", "ingress")


def test_context_remote_identity_beats_a_global_pod_config_only_for_the_identity():
    # edge: remote_identity LOCAL_CREDENTIALS, but the global pod_config names team-sa.
    edge = derive(_fixture("multi-context.yaml"), "edge", None, exec_auth=True)
    assert edge.remote_identity == "LOCAL_CREDENTIALS"
    assert edge.service_account == "team-sa" and not edge.creates_service_account
    assert any("exec plugin" in w for w in edge.warnings)


def test_context_string_identity_beats_a_global_map_without_a_match():
    text = (
        "kubernetes:\n  remote_identity:\n    prod: prod-sa\n"
        "  context_configs:\n    dev:\n      remote_identity: dev-sa\n"
    )
    assert _derive(text, context="dev").service_account == "dev-sa"


# --- ports and high availability ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "mode", "ingress"),
    [
        (None, "loadbalancer", False),
        ("loadbalancer", "loadbalancer", False),
        ("ingress", "ingress", True),
        ("podip", "podip", False),
    ],
)
def test_ports_modes(value, mode, ingress):
    text = f"kubernetes:\n  ports: {value}\n" if value else ""
    d = _derive(text)
    assert d.port_mode == mode
    assert any(n.startswith(f"ports is {mode} (") for n in d.notes)
    for identity in d.identities:
        assert ("ingress" in identity.features) is ingress


@pytest.mark.parametrize("value", ["Ingress", "PodIP", "LoadBalancer"])
def test_ports_in_another_case_fail_at_launch_so_they_are_an_input_error(value):
    # The schema accepts any case; KubernetesPortMode(value) at launch does not.
    with pytest.raises(ConfigError, match=f"'{value}' is not a valid KubernetesPortMode"):
        _derive(f"kubernetes:\n  ports: {value}\n")


def test_kind_skypilot_as_current_context_means_ingress_everywhere():
    d = _derive("kubernetes:\n  ports: Ingress\n", context="other", current_context="kind-skypilot")
    assert d.port_mode == "ingress"
    assert "ingress" in d.caller.features


def test_consolidation_mode_counts_as_ha_but_makes_no_controller_deployment():
    text = "jobs:\n  controller:\n    high_availability: true\n    consolidation_mode: true\n"
    d = _derive(text)
    assert d.high_availability_specified == ("jobs",)
    assert not d.high_availability and "high-availability" not in d.caller.features
    assert any("consolidation_mode is true" in n for n in d.notes)


@pytest.mark.parametrize(
    ("jobs", "serve", "expected"),
    [(False, False, False), (True, False, True), (False, True, True), (True, True, True)],
)
def test_high_availability_flags(jobs, serve, expected):
    text = (
        f"jobs:\n  controller:\n    high_availability: {str(jobs).lower()}\n"
        f"serve:\n  controller:\n    high_availability: {str(serve).lower()}\n"
    )
    d = _derive(text)
    assert d.high_availability is expected
    assert ("high-availability" in d.caller.required_features) is expected
    # The controllers' Deployments are created by the launcher, not by the pods' account.
    assert "high-availability" not in d.identities[1].features
    assert any("high_availability" in n for n in d.notes) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kubernetes:\n  pod_config:\n    spec:\n      hostNetwork: true\n", True),
        ("kubernetes:\n  pod_config:\n    spec:\n      hostNetwork: false\n", False),
        ("kubernetes:\n  pod_config:\n    spec:\n      hostname: x\n", False),
        # the context's pod_config wins over the global one
        (
            "kubernetes:\n  pod_config: {spec: {hostNetwork: true}}\n"
            "  context_configs:\n    ctx:\n      pod_config: {spec: {hostNetwork: false}}\n",
            False,
        ),
        (
            "kubernetes:\n  context_configs:\n    ctx:\n"
            "      pod_config: {spec: {hostNetwork: true}}\n",
            True,
        ),
    ],
)
def test_host_network_pods_make_the_launcher_read_the_probe_configmap(text, expected):
    d = _derive(text)
    assert ("host-network" in d.caller.required_features) is expected
    # The ConfigMap read before the first exec is the launcher's (instance.py).
    assert "host-network" not in d.identities[1].features
    assert any("hostNetwork is true" in n for n in d.notes) is expected


def test_host_network_must_be_a_boolean():
    with pytest.raises(ConfigError) as err:
        _cfg("kubernetes:\n  pod_config:\n    spec:\n      hostNetwork: maybe\n")
    assert "kubernetes.pod_config.spec.hostNetwork" in str(err.value)


def test_features_are_in_catalogue_order_and_union_of_identities():
    d = derive(_fixture("multi-context.yaml"), "gpu-cluster", None)
    assert d.features == tuple(f for f in KNOWN_FEATURES if f in set(d.features))
    assert set(d.features) == {f for i in d.identities for f in i.required_features}


# --- namespace order -------------------------------------------------------------------------


_NS_CASES = [
    # (context ns, global ns, in-cluster ns, kubeconfig ns, -n) -> (namespace, source)
    (("c", "g", "i", "k", None), ("c", "kubernetes.context_configs.ctx.namespace")),
    ((None, "g", "i", "k", None), ("g", "kubernetes.namespace")),
    ((None, None, "i", "k", None), ("i", "the in-cluster service account's namespace")),
    ((None, None, None, "k", None), ("k", "kubeconfig context ctx")),
    ((None, None, None, None, None), ("default", "SkyPilot's fallback; nothing sets one")),
    (("c", "g", "i", "k", "flag"), ("flag", "-n")),
]


def _ns_config(context_ns: str | None, global_ns: str | None) -> str:
    # Quoted: a bare `on` or `no` is a YAML 1.1 boolean to SkyPilot's loader and to ours.
    text = "kubernetes:\n"
    if global_ns:
        text += f"  namespace: {json.dumps(global_ns)}\n"
    if context_ns:
        text += f"  context_configs:\n    ctx:\n      namespace: {json.dumps(context_ns)}\n"
    return text


@pytest.mark.parametrize(("given_", "expected"), _NS_CASES)
def test_namespace_order(given_, expected):
    context_ns, global_ns, in_cluster, kube, flag = given_
    d = derive(
        _cfg(_ns_config(context_ns, global_ns)),
        "ctx",
        kube,
        in_cluster,
        namespace_flag=flag,
    )
    assert (d.namespace, d.namespace_source) == expected
    assert d.identities[1].namespace == expected[0]  # the pods' account lives there too
    assert any(n.startswith(f"namespace {expected[0]} (from ") for n in d.notes)


def test_another_contexts_namespace_does_not_apply():
    d = derive(_cfg(_ns_config("c", None)), "other", "k")
    assert d.namespace == "k"


_label = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)


@given(
    st.one_of(st.none(), _label),
    st.one_of(st.none(), _label),
    st.one_of(st.none(), _label),
    st.one_of(st.none(), _label),
)
def test_namespace_is_the_first_one_set_in_skypilots_order(context_ns, global_ns, in_cluster, kube):
    d = derive(_cfg(_ns_config(context_ns, global_ns)), "ctx", kube, in_cluster)
    expected = next(
        (n for n in (context_ns, global_ns, in_cluster, kube) if n is not None), "default"
    )
    assert d.namespace == expected


# --- allowed_contexts ------------------------------------------------------------------------

_KUBECONFIG = ["kind-dev", "prod-east", "ssh-pool", "prod-west"]


def test_allowed_contexts_absent_means_the_current_context():
    for config in (None, _cfg(""), _fixture("custom-sa.yaml")):
        assert contexts_to_check(config, _KUBECONFIG, "prod-east") == ["prod-east"]


def test_allowed_contexts_all_means_every_kubeconfig_context_except_ssh_node_pools():
    selection = select_contexts(_fixture("multi-context.yaml"), _KUBECONFIG, "kind-dev")
    assert selection.contexts == ("kind-dev", "prod-east", "prod-west")  # kubeconfig order
    assert any("ssh-pool" in n for n in selection.notes)
    assert not selection.warnings


def test_allowed_contexts_list_keeps_file_order_and_warns_on_missing_names():
    config = _cfg("kubernetes:\n  allowed_contexts: [prod-west, gone, kind-dev, prod-west]\n")
    selection = select_contexts(config, _KUBECONFIG, "prod-east")
    assert selection.contexts == ("prod-west", "kind-dev")  # the current one is not added
    assert selection.warnings == (
        "kubernetes.allowed_contexts names gone, not in the kubeconfig; SkyPilot ignores it",
    )


def test_allowed_contexts_with_nothing_usable_warns():
    config = _cfg("kubernetes:\n  allowed_contexts: [gone, ssh-pool]\n")
    selection = select_contexts(config, _KUBECONFIG, "kind-dev")
    assert selection.contexts == ()
    assert any("gone" in w for w in selection.warnings)
    assert any("ssh-pool" in n for n in selection.notes)
    assert select_contexts(_cfg("kubernetes:\n  allowed_contexts: []\n"), _KUBECONFIG, "x").warnings


def test_no_current_context_and_no_allowed_contexts_is_nothing_to_check():
    selection = select_contexts(None, _KUBECONFIG, None)
    assert selection.contexts == ()
    assert selection.warnings and "no current context" in selection.warnings[0]
    assert contexts_to_check(None, [], "ssh-pool") == []


def test_in_cluster_context_is_just_a_name():
    assert contexts_to_check(None, ["in-cluster"], "in-cluster") == ["in-cluster"]


# --- purity ------------------------------------------------------------------------------------


def test_module_imports_neither_kubernetes_nor_network_code():
    code = (
        "import sys, skycheck.skyconfig as s\n"
        "s.derive(None, 'ctx', None)\n"
        "mods = ('kubernetes', 'urllib3', 'socket', 'http.client')\n"
        "bad = [m for m in mods if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- what SkyPilot sees: kubeconfig, token, environment -------------------------------------


def _kc(current, names=("a", "b"), clusters=("c",)):
    return {
        "current-context": current,
        "contexts": [
            {"name": n, "context": {"cluster": "c", "namespace": f"ns-{n}"}} for n in names
        ],
        "clusters": [{"name": c, "cluster": {}} for c in clusters],
    }


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (_kc(None), "no current-context"),
        (_kc("gone"), "current-context gone names no context"),
        (_kc("a", clusters=()), "the cluster of its current-context a is missing"),
    ],
)
def test_a_kubeconfig_whose_current_context_cannot_load_shows_skypilot_no_context(data, problem):
    view = skyconfig.kube_view(data, env={})
    assert view.contexts == () and problem in view.warnings[0]
    selection, setups = skyconfig.resolve(_cfg("kubernetes:\n  allowed_contexts: all\n"), view)
    assert selection.contexts == () and setups == ()


def test_allow_all_variable_counts_only_when_allowed_contexts_is_absent():
    view = skyconfig.kube_view(_kc("a"), env={"SKYPILOT_ALLOW_ALL_KUBERNETES_CONTEXTS": "TRUE"})
    assert skyconfig.resolve(None, view)[0].contexts == ("a", "b")
    listed = _cfg("kubernetes:\n  allowed_contexts: [b]\n")
    assert skyconfig.resolve(listed, view)[0].contexts == ("b",)
    yes = skyconfig.kube_view(_kc("a"), env={"SKYPILOT_ALLOW_ALL_KUBERNETES_CONTEXTS": "yes"})
    assert skyconfig.resolve(None, yes)[0].contexts == ("a",)  # only true or 1 mean on


def test_in_cluster_context_its_name_namespace_and_exclusion():
    env = {"SKYPILOT_IN_CLUSTER_CONTEXT_NAME": "mine", "SKYPILOT_IN_CLUSTER_NAMESPACE": "env-ns"}
    view = skyconfig.kube_view(None, in_cluster=True, in_cluster_namespace="pod-ns", env=env)
    selection, (setup,) = skyconfig.resolve(None, view)
    assert selection.contexts == ("mine",)
    assert setup.derivation is not None and setup.derivation.namespace == "env-ns"
    # Beside a kubeconfig whose current context is an SSH Node Pool's, the pod's own wins.
    ssh = skyconfig.kube_view(_kc("ssh-x", ("ssh-x", "a")), in_cluster=True, env={})
    assert skyconfig.resolve(None, ssh)[0].contexts == ("in-cluster",)
    # Left out when derived, kept when listed.
    off = {"SKYPILOT_ALL_KUBERNETES_CONTEXTS_INCLUDES_IN_CLUSTER": "false"}
    view = skyconfig.kube_view(_kc("a"), in_cluster=True, env=off)
    assert skyconfig.resolve(_cfg("kubernetes:\n  allowed_contexts: all\n"), view)[0].contexts == (
        "a",
        "b",
    )
    listed = _cfg("kubernetes:\n  allowed_contexts: [in-cluster]\n")
    assert skyconfig.resolve(listed, view)[0].contexts == ("in-cluster",)
    # The variable never sets a kubeconfig context's namespace.
    plain = skyconfig.kube_view(_kc("a"), env={"SKYPILOT_IN_CLUSTER_NAMESPACE": "env-ns"})
    (setup,) = skyconfig.resolve(None, plain)[1]
    assert setup.derivation is not None and setup.derivation.namespace == "ns-a"


def test_a_context_skypilot_fails_on_is_an_error_of_that_context_only():
    text = "kubernetes:\n  allowed_contexts: all\n  remote_identity:\n    a: sa-a\n"
    _, setups = skyconfig.resolve(_cfg(text), skyconfig.kube_view(_kc("a"), env={}))
    assert setups[0].derivation is not None and setups[0].derivation.service_account == "sa-a"
    assert setups[1].derivation is None and setups[1].error is not None
    assert "no entry matches context 'b'" in setups[1].error.one_line()

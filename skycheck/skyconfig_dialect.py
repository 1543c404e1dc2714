"""How each SkyPilot release line reads ``~/.sky/config.yaml`` where the lines differ.

skyconfig.py reads the config as SkyPilot 0.14.1 does; a :class:`Dialect` names what an
older line does instead. Each difference was found by the setup differential
(tests/parity), which runs SkyPilot's own config functions of every proven release
against the same corpus, and is cited below with the release's source.
"""

from __future__ import annotations

from dataclasses import dataclass

from skycheck.skypilot_version import version_key


@dataclass(frozen=True, slots=True)
class Dialect:
    """The config-reading behaviours that differ between SkyPilot release lines."""

    name: str
    # kubernetes.namespace and context_configs.<ctx>.namespace choose the namespace
    # (get_namespace in sky/provision/kubernetes/utils.py, 0.14). Before, the cloud
    # asks get_kube_config_context_namespace(context) alone and the key is ignored.
    config_namespace: bool = True
    # A remote_identity map is matched with fnmatch, first entry in file order (0.14).
    # Before, it is ``remote_identity.get(context)``: patterns are literal names and a
    # context without its own entry fails the launch (make_deploy_resources_variables
    # in sky/clouds/kubernetes.py, 0.12.3.post1).
    identity_globs: bool = True
    # SKYPILOT_ALL_KUBERNETES_CONTEXTS_INCLUDES_IN_CLUSTER=false can drop the in-cluster
    # context (existing_allowed_contexts, 0.14). Before, the variable does not exist.
    in_cluster_exclusion_env: bool = True
    # SKYPILOT_ALLOW_ALL_KUBERNETES_CONTEXTS (sky/utils/env_options.py) exists from 0.10.5.
    allow_all_env: bool = True
    # The schema takes ``allowed_contexts: all`` and a ``namespace`` key (0.10.5 on);
    # 0.10.3.post2's schema refuses both and SkyPilot rejects the whole file.
    schema_all_contexts: bool = True
    schema_namespace: bool = True
    # consolidation_mode counts as high availability (0.10.5 on); 0.10.3.post2's
    # high_availability_specified reads <jobs|serve>.controller.high_availability alone.
    consolidation_is_ha: bool = True


CURRENT = Dialect("0.14 and later")
# 0.10.5 to 0.12.3.post1: proven with 0.12.3.post1.
BEFORE_0_13 = Dialect(
    "before 0.13",
    config_namespace=False,
    identity_globs=False,
    in_cluster_exclusion_env=False,
)


# 0.10.0 to 0.10.3.post2: proven with 0.10.3.post2.
BEFORE_0_10_5 = Dialect(
    "before 0.10.5",
    config_namespace=False,
    identity_globs=False,
    in_cluster_exclusion_env=False,
    allow_all_env=False,
    schema_all_contexts=False,
    schema_namespace=False,
    consolidation_is_ha=False,
)


def for_version(version: str | None) -> Dialect:
    """The dialect of the SkyPilot release ``version`` (a proven release, or a nightly).

    None (no version known) reads as 0.14.1 does.
    """
    if version is None:
        return CURRENT
    release = version_key(version)[0]
    if release < (0, 10, 5):
        return BEFORE_0_10_5
    if release < (0, 13):
        return BEFORE_0_13
    return CURRENT


__all__ = ["BEFORE_0_10_5", "BEFORE_0_13", "CURRENT", "Dialect", "for_version"]

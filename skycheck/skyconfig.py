"""SkyPilot's ``~/.sky/config.yaml``: what it changes about the permissions to check.

Pure: one file read through :mod:`skycheck.yamlio`, no network, no ``kubernetes``.

Three questions, answered the way SkyPilot answers them:

- which contexts SkyPilot will use (``kubernetes.allowed_contexts``):
  :func:`select_contexts` / :func:`contexts_to_check`;
- per context, which namespace, which identities act and which features they
  need (``remote_identity``, ``pod_config.spec.serviceAccountName``, ``ports``,
  ``namespace``, ``context_configs.<ctx>``, the controllers'
  ``high_availability``): :func:`derive`;
- whether the file is valid at all: :func:`load_sky_config` raises
  :class:`~skycheck.errors.ConfigError` naming the key path, e.g.
  ``~/.sky/config.yaml: kubernetes.ports: must be one of loadbalancer, ingress, podip``.

Per-context lookups follow SkyPilot's ``get_effective_region_config``
(sky/utils/config_utils.py): a value under ``kubernetes.context_configs.<ctx>``
wins over the one under ``kubernetes``; ``pod_config`` dictionaries are merged,
so a context's ``spec.serviceAccountName`` wins over the global one.

Not modelled: workspaces (``workspaces.<ws>.kubernetes`` overrides that
SkyPilot consults first), the project config (``.sky.yaml``) that SkyPilot
layers over the user config, and the API server's config. A file that defines
workspaces gets a warning saying so.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from skycheck import yamlio
from skycheck.catalogue import KNOWN_FEATURES
from skycheck.errors import ConfigError, InputError
from skycheck.names import is_dns_label, is_dns_subdomain
from skycheck.skyconfig_dialect import CURRENT, Dialect

# SkyPilot's own service account (sky/provision/kubernetes/utils.py,
# DEFAULT_SERVICE_ACCOUNT_NAME). bootstrap_instances() in
# sky/provision/kubernetes/config.py creates it and its roles exactly when the
# pod's serviceAccountName equals this name.
DEFAULT_SERVICE_ACCOUNT = "skypilot-service-account"
DEFAULT_NAMESPACE = "default"
DEFAULT_REMOTE_IDENTITY = "SERVICE_ACCOUNT"
# remote_identity keywords under which pods run as DEFAULT_SERVICE_ACCOUNT.
# Compared case-sensitively, as SkyPilot 0.14.1 does for Kubernetes
# (make_deploy_resources_variables in sky/clouds/kubernetes.py: its schema types
# kubernetes.remote_identity as a free string; any other string is an SA name,
# so NONE, a keyword only in later nightlies, names an account "NONE" there).
IDENTITY_KEYWORDS = ("SERVICE_ACCOUNT", "LOCAL_CREDENTIALS", "NO_UPLOAD")
PORT_MODES = ("loadbalancer", "ingress", "podip")
DEFAULT_PORT_MODE = "loadbalancer"
ALL_CONTEXTS = "all"
# SSH Node Pool contexts: SkyPilot's Kubernetes cloud never uses them.
SSH_CONTEXT_PREFIX = "ssh-"
# `sky local up`'s context: when it is the current context, SkyPilot uses ingress
# for every context (get_port_mode in sky/provision/kubernetes/network_utils.py).
KIND_CONTEXT = "kind-skypilot"
# The in-cluster pseudo-context (sky/adaptors/kubernetes.py, in_cluster_context_name).
IN_CLUSTER_CONTEXT = "in-cluster"

# Environment variables SkyPilot reads to find the user config
# (sky/skypilot_config.py): SKYPILOT_CONFIG replaces every other file.
ENV_CONFIG = "SKYPILOT_CONFIG"
ENV_GLOBAL_CONFIG = "SKYPILOT_GLOBAL_CONFIG"
USER_CONFIG = "~/.sky/config.yaml"
# Environment variables that change which contexts SkyPilot uses and their
# namespace (sky/utils/env_options.py, sky/provision/kubernetes/utils.py,
# sky/adaptors/kubernetes.py).
ENV_ALLOW_ALL_CONTEXTS = "SKYPILOT_ALLOW_ALL_KUBERNETES_CONTEXTS"
ENV_INCLUDES_IN_CLUSTER = "SKYPILOT_ALL_KUBERNETES_CONTEXTS_INCLUDES_IN_CLUSTER"
ENV_IN_CLUSTER_NAMESPACE = "SKYPILOT_IN_CLUSTER_NAMESPACE"
ENV_IN_CLUSTER_CONTEXT_NAME = "SKYPILOT_IN_CLUSTER_CONTEXT_NAME"


# --- the parsed file ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdentityMap:
    """``remote_identity`` given per context: context name or glob -> service account."""

    entries: tuple[tuple[str, str], ...]

    def lookup(self, context: str) -> tuple[str, str] | None:
        """Return (pattern, service account) for ``context``, or None.

        The first entry in file order whose pattern matches, with
        ``fnmatchcase`` (make_deploy_resources_variables in
        sky/clouds/kubernetes.py): an exact name listed after a matching glob
        loses to the glob, so ``{'*': a, prod: b}`` gives ``a`` for prod.
        """
        for pattern, account in self.entries:
            if fnmatch.fnmatchcase(context, pattern):
                return pattern, account
        return None

    def exact(self, context: str) -> tuple[str, str] | None:
        """Return (name, service account) for the entry named ``context`` exactly, or None.

        SkyPilot before 0.13 reads the map as a dict (``remote_identity.get(context)``):
        a pattern is a literal name, and the last of two equal keys wins.
        """
        found = None
        for pattern, account in self.entries:
            if pattern == context:
                found = (pattern, account)
        return found


@dataclass(frozen=True, slots=True)
class KubernetesSettings:
    """The keys that may be set under ``kubernetes`` or ``kubernetes.context_configs.<ctx>``.

    ``None`` means "not set here". ``remote_identity`` is an :class:`IdentityMap`
    only at the top level.
    """

    remote_identity: str | IdentityMap | None = None
    ports: str | None = None
    namespace: str | None = None
    service_account_name: str | None = None  # pod_config.spec.serviceAccountName
    host_network: bool | None = None  # pod_config.spec.hostNetwork


@dataclass(frozen=True, slots=True)
class SkyConfig:
    """What skycheck reads from a SkyPilot config file (validated)."""

    source: str
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    context_configs: tuple[tuple[str, KubernetesSettings], ...] = ()
    # None: not set (the current context only); "all"; or names in file order.
    allowed_contexts: str | tuple[str, ...] | None = None
    jobs_high_availability: bool = False
    serve_high_availability: bool = False
    # <jobs|serve>.controller.consolidation_mode: the controller runs inside the API
    # server, so no controller Deployment is made whatever high_availability says.
    jobs_consolidation: bool = False
    serve_consolidation: bool = False
    warnings: tuple[str, ...] = ()
    # api_server.endpoint: the SkyPilot API server the client talks to (its version is
    # one way to know which SkyPilot a check is for, see skypilot_version.select).
    api_server_endpoint: str | None = None

    def context_config(self, context: str) -> KubernetesSettings:
        """``kubernetes.context_configs.<context>`` (exact name, as SkyPilot looks it up)."""
        for name, settings in self.context_configs:
            if name == context:
                return settings
        return KubernetesSettings()


# --- loading -------------------------------------------------------------------------------


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """The config file SkyPilot reads on this machine (see :func:`config_location`)."""
    return config_location(env)[0]


def config_location(env: Mapping[str, str] | None = None) -> tuple[Path, str | None]:
    """(the config file SkyPilot reads, the environment variable that named it, if any).

    ``$SKYPILOT_CONFIG`` if set at all, even empty (it replaces every other
    file), else a non-empty ``$SKYPILOT_GLOBAL_CONFIG``, else
    ``~/.sky/config.yaml`` (reload_config and resolve_user_config_path in
    sky/skypilot_config.py). SkyPilot refuses to start when a file named by a
    variable is missing, so the caller should too.
    """
    env = os.environ if env is None else env
    if env.get(ENV_CONFIG) is not None:
        return Path(env[ENV_CONFIG]).expanduser(), ENV_CONFIG
    if env.get(ENV_GLOBAL_CONFIG):
        return Path(env[ENV_GLOBAL_CONFIG]).expanduser(), ENV_GLOBAL_CONFIG
    return Path(USER_CONFIG).expanduser(), None


def display_path(path: str | Path) -> str:
    """``path`` for messages, with the home directory shown as ``~``."""
    text = str(path)
    home = str(Path.home())
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home) :]
    return text


def load_sky_config(path: str | Path, *, missing_ok: bool = True) -> SkyConfig | None:
    """Read and validate a SkyPilot config file.

    Returns None when the file does not exist and ``missing_ok`` (the default
    path on a machine without SkyPilot config); an explicit ``--sky-config``
    should pass ``missing_ok=False``. An empty file, or one without a
    ``kubernetes`` section, gives SkyPilot's defaults.
    """
    p = Path(path).expanduser()
    source = display_path(p)
    if not p.exists():
        if missing_ok:
            return None
        raise ConfigError(source, "", "SkyPilot config file does not exist")
    try:
        text = yamlio.read_text(p, what="SkyPilot config")
    except InputError as exc:
        raise ConfigError(source, exc.where, exc.problem) from None
    return parse_sky_config_text(text, source)


def parse_sky_config_text(text: str, source: str) -> SkyConfig:
    """Parse and validate the text of a SkyPilot config file."""
    try:
        doc = yamlio.load_one(text, source, what="SkyPilot config")
    except ConfigError:
        raise
    except InputError as exc:
        raise ConfigError(exc.source, exc.where, exc.problem) from None
    return parse_sky_config(doc, source)


def parse_sky_config(doc: Any, source: str) -> SkyConfig:
    """Validate an already-parsed config document.

    Keys skycheck does not use are ignored, as SkyPilot's client ignores keys
    its plugins may add; the keys it does use are type-checked, and errors name
    the key path.
    """
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(source, "", f"expected a mapping at the top level, got {_kind(doc)}")
    p = _Parser(source)
    warnings: list[str] = []
    if doc.get("workspaces") or doc.get("active_workspace"):
        warnings.append(
            f"{source} defines workspaces: skycheck ignores workspace overrides of "
            "kubernetes settings (namespace, remote_identity, allowed_contexts)"
        )
    k8s = p.mapping(doc.get("kubernetes"), "kubernetes")
    settings = p.settings(k8s, "kubernetes", top_level=True)
    contexts: list[tuple[str, KubernetesSettings]] = []
    raw_contexts = p.mapping(k8s.get("context_configs"), "kubernetes.context_configs")
    for name, body in raw_contexts.items():
        where = f"kubernetes.context_configs.{name}"
        if not isinstance(name, str) or not name:
            raise ConfigError(source, where, "context names must be non-empty strings")
        contexts.append((name, p.settings(p.mapping(body, where), where, top_level=False)))
    return SkyConfig(
        source=source,
        kubernetes=settings,
        context_configs=tuple(contexts),
        allowed_contexts=p.allowed_contexts(k8s.get("allowed_contexts")),
        jobs_high_availability=p.controller_flag(doc, "jobs", "high_availability"),
        serve_high_availability=p.controller_flag(doc, "serve", "high_availability"),
        jobs_consolidation=p.controller_flag(doc, "jobs", "consolidation_mode"),
        serve_consolidation=p.controller_flag(doc, "serve", "consolidation_mode"),
        warnings=tuple(warnings),
        api_server_endpoint=_api_server_endpoint(p, doc),
    )


def _api_server_endpoint(p: _Parser, doc: dict[Any, Any]) -> str | None:
    value = p.mapping(doc.get("api_server"), "api_server").get("endpoint")
    return None if value is None else p.string(value, "api_server.endpoint")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    return names.get(type(value), f"a {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class _Parser:
    """Type checks that raise ConfigError naming ``source`` and the key path."""

    source: str

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(self.source, where, problem)

    def mapping(self, value: Any, where: str) -> dict[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a mapping, got {_kind(value)}")
        return value

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"must be a string, got {_kind(value)}")
        if not value.strip():
            raise self.fail(where, "must not be empty")
        return value

    def namespace(self, value: Any, where: str) -> str | None:
        if value is None:
            return None
        text = self.string(value, where)
        if not is_dns_label(text):
            raise self.fail(where, f"{text!r} is not a valid namespace name (DNS-1123 label)")
        return text

    def service_account(self, value: Any, where: str, *, keywords: bool) -> str:
        text = self.string(value, where)
        if keywords and text in IDENTITY_KEYWORDS:
            return text
        if not is_dns_subdomain(text):
            if keywords:
                nightly = (
                    "; SkyPilot nightlies read NONE as 'no API credentials', SkyPilot 0.14.1 "
                    "as this account name"
                    if text == "NONE"
                    else ""
                )
                raise self.fail(
                    where,
                    f"{text!r} is neither one of {', '.join(IDENTITY_KEYWORDS)} (case "
                    f"matters) nor a valid service account name (DNS-1123 subdomain){nightly}",
                )
            raise self.fail(
                where, f"{text!r} is not a valid service account name (DNS-1123 subdomain)"
            )
        return text

    def ports(self, value: Any, where: str) -> str | None:
        if value is None:
            return None
        # SkyPilot's schema uses a case-insensitive enum for ports, but launch
        # compares exactly (derive() reports that); keep the text as written.
        if not isinstance(value, str) or value.lower() not in PORT_MODES:
            raise self.fail(where, f"must be one of {', '.join(PORT_MODES)}")
        return value

    def remote_identity(
        self, value: Any, where: str, *, top_level: bool
    ) -> str | IdentityMap | None:
        if value is None:
            return None
        if isinstance(value, str):
            return self.service_account(value, where, keywords=True)
        if not top_level:
            raise self.fail(where, f"must be a string here, got {_kind(value)}")
        entries: list[tuple[str, str]] = []
        if not isinstance(value, dict):
            # SkyPilot's Kubernetes schema (_REMOTE_IDENTITY_SCHEMA_KUBERNETES in
            # sky/utils/schemas.py) takes a string or a mapping; the list of
            # single-key mappings is AWS's syntax, and SkyPilot rejects the file.
            raise self.fail(
                where,
                f"must be a string or a mapping of context to service account, got "
                f"{_kind(value)} (SkyPilot rejects this file)",
            )
        items = [(k, v, f"{where}.{k}") for k, v in value.items()]
        if not items:
            raise self.fail(where, "must not be empty")
        for key, account, at in items:
            if not isinstance(key, str) or not key:
                raise self.fail(at, "context names must be non-empty strings")
            entries.append((key, self.service_account(account, at, keywords=True)))
        return IdentityMap(tuple(entries))

    def pod_spec(self, pod_config: Any, where: str) -> dict[Any, Any]:
        """``pod_config.spec`` as a mapping (``where`` names ``pod_config``)."""
        return self.mapping(self.mapping(pod_config, where).get("spec"), f"{where}.spec")

    def pod_service_account(self, spec: dict[Any, Any], where: str) -> str | None:
        value = spec.get("serviceAccountName")
        if value is None:
            return None
        return self.service_account(value, f"{where}.serviceAccountName", keywords=False)

    def pod_host_network(self, spec: dict[Any, Any], where: str) -> bool | None:
        value = spec.get("hostNetwork")
        if value is None or isinstance(value, bool):
            return value
        # The pod spec field is a boolean: Kubernetes refuses the pod at launch.
        raise self.fail(f"{where}.hostNetwork", f"must be true or false, not {_kind(value)}")

    def settings(self, body: dict[Any, Any], where: str, *, top_level: bool) -> KubernetesSettings:
        remote_identity = self.remote_identity(
            body.get("remote_identity"), f"{where}.remote_identity", top_level=top_level
        )
        ports = self.ports(body.get("ports"), f"{where}.ports")
        namespace = self.namespace(body.get("namespace"), f"{where}.namespace")
        spec = self.pod_spec(body.get("pod_config"), f"{where}.pod_config")
        return KubernetesSettings(
            remote_identity=remote_identity,
            ports=ports,
            namespace=namespace,
            service_account_name=self.pod_service_account(spec, f"{where}.pod_config.spec"),
            host_network=self.pod_host_network(spec, f"{where}.pod_config.spec"),
        )

    def allowed_contexts(self, value: Any) -> str | tuple[str, ...] | None:
        where = "kubernetes.allowed_contexts"
        if value is None:
            return None
        if value == ALL_CONTEXTS:
            return ALL_CONTEXTS
        if not isinstance(value, list):
            raise self.fail(where, "must be a list of context names or the string all")
        names = [self.string(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return tuple(dict.fromkeys(names))

    def controller_flag(self, doc: dict[Any, Any], section: str, key: str) -> bool:
        body = self.mapping(doc.get(section), section)
        controller = self.mapping(body.get("controller"), f"{section}.controller")
        value = controller.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(
                f"{section}.controller.{key}",
                f"must be true or false, got {_kind(value)}",
            )
        return value


def refuse_for_release(config: SkyConfig | None, dialect: Dialect) -> None:
    """Raise ConfigError where the release line's own schema rejects the whole file.

    skycheck's parser takes what 0.14.1 takes; an older schema refuses some of it, and
    SkyPilot then fails every command (sky/utils/schemas.py of that release).
    """
    if config is None:
        return
    if not dialect.schema_all_contexts and config.allowed_contexts == ALL_CONTEXTS:
        raise ConfigError(
            config.source,
            "kubernetes.allowed_contexts",
            f"SkyPilot {dialect.name} takes only a list here, not all (it rejects this file)",
        )
    if not dialect.schema_namespace:
        settings = [("kubernetes", config.kubernetes)] + [
            (f"kubernetes.context_configs.{name}", body) for name, body in config.context_configs
        ]
        for where, body in settings:
            if body.namespace is not None:
                raise ConfigError(
                    config.source,
                    f"{where}.namespace",
                    f"SkyPilot {dialect.name} has no namespace key (it rejects this file); "
                    "set the namespace in the kubeconfig context",
                )


# --- which contexts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContextSelection:
    """The contexts SkyPilot will use, and what the user should know about the choice."""

    contexts: tuple[str, ...]
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def env_flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """An on/off variable read as SkyPilot reads it (sky/utils/env_options.py):
    true or 1, in any case, is on; any other value is off; unset is ``default``."""
    value = env.get(name)
    return default if value is None else value.lower() in ("true", "1")


def in_cluster_context_name(env: Mapping[str, str]) -> str:
    """The in-cluster context's name: ``$SKYPILOT_IN_CLUSTER_CONTEXT_NAME`` or ``in-cluster``."""
    return env.get(ENV_IN_CLUSTER_CONTEXT_NAME) or IN_CLUSTER_CONTEXT


def select_contexts(
    config: SkyConfig | None,
    kubeconfig_context_names: Sequence[str],
    current: str | None,
    *,
    in_cluster: bool = False,
    env: Mapping[str, str] | None = None,
    dialect: Dialect = CURRENT,
) -> ContextSelection:
    """Resolve the contexts SkyPilot uses, like ``Kubernetes.existing_allowed_contexts``
    (sky/clouds/kubernetes.py).

    ``in_cluster``: a service-account token is mounted (SkyPilot adds the
    in-cluster context to the kubeconfig's, under
    ``$SKYPILOT_IN_CLUSTER_CONTEXT_NAME``). ``allowed_contexts: all``, or
    ``$SKYPILOT_ALLOW_ALL_KUBERNETES_CONTEXTS`` when the key is absent: every
    context. A list: those, in the file's order, that exist. Absent: the
    current context, or the in-cluster one when there is no current context or
    it is an SSH Node Pool's (``ssh-*``, never used by the Kubernetes cloud).
    ``$SKYPILOT_ALL_KUBERNETES_CONTEXTS_INCLUDES_IN_CLUSTER=false`` drops the
    in-cluster context unless the list names it. A name listed twice is checked
    once.
    """
    env = os.environ if env is None else env
    in_cluster_name = in_cluster_context_name(env)
    names = list(kubeconfig_context_names)
    if in_cluster:
        names.append(in_cluster_name)
    available = [n for n in dict.fromkeys(names) if not n.startswith(SSH_CONTEXT_PREFIX)]
    allowed = config.allowed_contexts if config is not None else None
    explicit = allowed is not None and allowed != ALL_CONTEXTS
    notes: list[str] = []
    warnings: list[str] = []
    skipped_ssh = [n for n in dict.fromkeys(names) if n.startswith(SSH_CONTEXT_PREFIX)]
    wanted: list[str]
    if allowed == ALL_CONTEXTS or (
        allowed is None and dialect.allow_all_env and env_flag(env, ENV_ALLOW_ALL_CONTEXTS, False)
    ):
        wanted = available
        why = (
            "allowed_contexts is all"
            if allowed == ALL_CONTEXTS
            else (f"{ENV_ALLOW_ALL_CONTEXTS} is set")
        )
        notes.append(f"{why}: SkyPilot uses every kubeconfig context ({len(wanted)})")
    elif allowed is None:
        chosen = current
        if (chosen is None or chosen.startswith(SSH_CONTEXT_PREFIX)) and in_cluster:
            chosen = in_cluster_name
        wanted = [] if chosen is None else [chosen]
        if chosen is None:
            warnings.append(
                "no context to check: the kubeconfig has no current context and "
                "allowed_contexts is not set"
            )
        elif chosen in available:
            notes.append(f"allowed_contexts is not set: SkyPilot uses the current context {chosen}")
    else:
        assert isinstance(allowed, tuple)
        wanted = list(allowed)
    chosen_contexts: list[str] = []
    missing: list[str] = []
    for name in wanted:
        if name in available:
            chosen_contexts.append(name)
        elif name.startswith(SSH_CONTEXT_PREFIX):
            skipped_ssh.append(name)
        else:
            missing.append(name)
    if missing:
        warnings.append(
            ("kubernetes.allowed_contexts names " if explicit else "the current context ")
            + ", ".join(missing)
            + ", not in the kubeconfig; SkyPilot ignores "
            + ("it" if len(missing) == 1 else "them")
        )
    if explicit:
        notes.append(
            "allowed_contexts lists " + (", ".join(chosen_contexts) or "no usable context")
        )
    elif (
        dialect.in_cluster_exclusion_env
        and in_cluster_name in chosen_contexts
        and not env_flag(env, ENV_INCLUDES_IN_CLUSTER, True)
    ):
        chosen_contexts.remove(in_cluster_name)
        notes.append(f"{ENV_INCLUDES_IN_CLUSTER} is false: SkyPilot leaves out {in_cluster_name}")
    chosen_contexts = list(dict.fromkeys(chosen_contexts))
    if skipped_ssh:
        notes.append(
            "skipped SSH Node Pool contexts (SkyPilot's Kubernetes cloud does not use them): "
            + ", ".join(dict.fromkeys(skipped_ssh))
        )
    if not chosen_contexts and not warnings:
        warnings.append("no context to check: SkyPilot would find Kubernetes disabled")
    return ContextSelection(tuple(chosen_contexts), tuple(notes), tuple(warnings))


def contexts_to_check(
    config: SkyConfig | None, kubeconfig_context_names: Sequence[str], current: str | None
) -> list[str]:
    """The contexts of :func:`select_contexts`, without its notes and warnings."""
    return list(select_contexts(config, kubeconfig_context_names, current).contexts)


# --- per-context derivation ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckIdentity:
    """One identity SkyPilot acts as in a context, and what it must be able to do.

    ``service_account`` is None for the caller (the kubeconfig user, resolved by
    asking the API server). ``features`` are the features to check;
    ``required_features`` the ones that gate. ``managed`` marks SkyPilot's own
    service account, which SkyPilot creates and grants itself at launch: its
    check shows drift, and requiring it would fail every first launch.
    """

    role: str  # "caller" | "service-account"
    service_account: str | None
    namespace: str | None
    features: tuple[str, ...]
    required_features: tuple[str, ...]
    managed: bool = False


@dataclass(frozen=True, slots=True)
class Derivation:
    """What a SkyPilot config means for one context."""

    context: str
    namespace: str
    namespace_source: str
    remote_identity: str  # the keyword or service account name in effect
    remote_identity_source: str
    service_account: str  # what SkyPilot's pods run as
    creates_service_account: bool
    port_mode: str
    high_availability: bool  # a controller runs as a Deployment the caller creates
    # Controllers for which SkyPilot's high_availability_specified() is true
    # (sky/utils/controller_utils.py): HA set, or consolidation mode.
    high_availability_specified: tuple[str, ...]
    identities: tuple[CheckIdentity, ...]
    notes: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def caller(self) -> CheckIdentity:
        return self.identities[0]

    @property
    def features(self) -> tuple[str, ...]:
        """Every feature some identity must hold here, in catalogue order."""
        wanted = {f for i in self.identities for f in i.required_features}
        return _ordered(wanted)


def _ordered(names: set[str] | Sequence[str]) -> tuple[str, ...]:
    return tuple(n for n in KNOWN_FEATURES if n in set(names))


def _pick(context_value: Any, global_value: Any, context: str, key: str) -> tuple[Any, str | None]:
    """SkyPilot's precedence: context_configs.<ctx>.<key>, then kubernetes.<key>."""
    if context_value is not None:
        return context_value, f"kubernetes.context_configs.{context}.{key}"
    if global_value is not None:
        return global_value, f"kubernetes.{key}"
    return None, None


def derive(
    config: SkyConfig | None,
    context_name: str,
    kube_context_namespace: str | None,
    in_cluster_namespace: str | None = None,
    *,
    exec_auth: bool = False,
    namespace_flag: str | None = None,
    current_context: str | None = None,
    dialect: Dialect = CURRENT,
) -> Derivation:
    """Derive namespace, identities and required features for one context.

    Namespace, in SkyPilot's order (sky/provision/kubernetes/utils.py,
    get_kube_config_context_namespace, and the config lookups before it):
    ``kubernetes.context_configs.<ctx>.namespace``, ``kubernetes.namespace``,
    the in-cluster service account's namespace, the kubeconfig context's
    namespace, ``default``. SkyPilot consults a workspace's settings before
    all of these; skycheck ignores workspaces. Pass ``in_cluster_namespace``
    only for the in-cluster context (SkyPilot reads it only there), and
    ``namespace_flag`` for an explicit ``-n``, which beats everything.

    Identities: always the caller (the kubeconfig user), then the service
    account SkyPilot's pods run as, in that namespace. ``config`` None means
    SkyPilot's defaults (no config file).

    ``exec_auth``: the context's user authenticates with an exec (or
    auth-provider) plugin, which cannot work once LOCAL_CREDENTIALS copies the
    kubeconfig into the cluster. ``current_context``: the kubeconfig's current
    context; ``kind-skypilot`` there makes SkyPilot use ingress everywhere.

    Raises ConfigError for what SkyPilot accepts in the file but fails on at
    launch on this context: a ``remote_identity`` mapping without an entry for
    it, a ``ports`` value not written in lower case.
    """
    cfg = config if config is not None else SkyConfig(source=USER_CONFIG)
    ctx = cfg.context_config(context_name)
    notes: list[str] = []
    warnings: list[str] = list(cfg.warnings)

    namespace, ns_source = _namespace(
        cfg,
        ctx,
        context_name,
        kube_context_namespace,
        in_cluster_namespace,
        namespace_flag,
        dialect,
    )
    notes.append(
        f"namespace {namespace} (from {ns_source}); SkyPilot never creates it, so it must exist"
    )

    identity, identity_source, mapped = _remote_identity(cfg, ctx, context_name, dialect)
    account, creates, account_notes = _pod_service_account(cfg, ctx, context_name, identity)
    if mapped is not None:
        notes.append(mapped)
    notes.append(_identity_note(identity, identity_source, overridden=bool(account_notes)))
    notes += account_notes
    if identity == "LOCAL_CREDENTIALS" and exec_auth:
        warnings.append(
            f"context {context_name}: remote_identity is LOCAL_CREDENTIALS and the kubeconfig "
            "user authenticates with an exec plugin: SkyPilot copies the kubeconfig into the "
            "cluster, where the plugin is missing and authentication fails; use "
            "SERVICE_ACCOUNT or a custom service account"
        )

    port_mode, ports_note = _ports(cfg, ctx, context_name, namespace, current_context)
    notes.append(ports_note)
    ha_keys = [
        f"{section}.controller.high_availability"
        for section, on, consolidated in (
            ("jobs", cfg.jobs_high_availability, cfg.jobs_consolidation),
            ("serve", cfg.serve_high_availability, cfg.serve_consolidation),
        )
        if on and not consolidated
    ]
    for section, on, consolidated in (
        ("jobs", cfg.jobs_high_availability, cfg.jobs_consolidation),
        ("serve", cfg.serve_high_availability, cfg.serve_consolidation),
    ):
        if consolidated:
            notes.append(
                f"{section}.controller.consolidation_mode is true: the {section} controller "
                "runs inside the API server, so no controller Deployment is made"
                + (" (its high_availability needs no permission here)" if on else "")
            )
    if ha_keys:
        notes.append(
            f"{' and '.join(ha_keys)} {'is' if len(ha_keys) == 1 else 'are'} true: "
            "controllers run as Deployments with a persistent volume claim, which the "
            "kubeconfig user creates, so it needs high-availability"
        )

    # The caller launches: it creates SkyPilot's account (rbac-bootstrap) and
    # the HA controllers' Deployments. Pods and controllers act as the account,
    # and the serve controller opens ports for its replicas (ingress).
    caller = {"core"}
    pods = {"core"}
    if creates:
        caller.add("rbac-bootstrap")
    if port_mode == "ingress":
        caller.add("ingress")
        pods.add("ingress")
    if ha_keys:
        caller.add("high-availability")
    host_network, where = _pick(
        ctx.host_network, cfg.kubernetes.host_network, context_name, "pod_config"
    )
    if host_network:
        caller.add("host-network")
        notes.append(
            f"{where}.spec.hostNetwork is true: the launcher reads the ConfigMap in which "
            "each pod records its sshd port, so it needs host-network"
        )
    caller_features, account_features = _ordered(caller), _ordered(pods)
    if creates:
        notes.append(
            f"{DEFAULT_SERVICE_ACCOUNT} is checked but does not gate: SkyPilot creates it and "
            "grants it its own roles at launch (before the first launch it does not exist)"
        )
    else:
        notes.append(
            f"service account {account} in {namespace} must already exist and hold "
            f"{', '.join(account_features)}: SkyPilot's pods and controllers act as it"
        )
    return Derivation(
        context=context_name,
        namespace=namespace,
        namespace_source=ns_source,
        remote_identity=identity,
        remote_identity_source=identity_source,
        service_account=account,
        creates_service_account=creates,
        port_mode=port_mode,
        high_availability=bool(ha_keys),
        high_availability_specified=high_availability_specified(cfg, dialect),
        identities=(
            CheckIdentity("caller", None, None, caller_features, caller_features),
            CheckIdentity(
                "service-account",
                account,
                namespace,
                account_features,
                () if creates else account_features,
                managed=creates,
            ),
        ),
        notes=tuple(notes),
        warnings=tuple(dict.fromkeys(warnings)),
    )


def high_availability_specified(
    config: SkyConfig | None, dialect: Dialect = CURRENT
) -> tuple[str, ...]:
    """Controllers for which SkyPilot's ``high_availability_specified`` is true.

    Consolidation mode counts as HA there (sky/utils/controller_utils.py); for
    jobs SkyPilot reads the signal file the API server writes at start from
    ``jobs.controller.consolidation_mode``, so the config stands for it.
    Releases before 0.10.5 count ``high_availability`` alone.
    """
    if config is None:
        return ()
    if not dialect.consolidation_is_ha:
        return tuple(
            section
            for section, on in (
                ("jobs", config.jobs_high_availability),
                ("serve", config.serve_high_availability),
            )
            if on
        )
    return tuple(
        section
        for section, on, consolidated in (
            ("jobs", config.jobs_high_availability, config.jobs_consolidation),
            ("serve", config.serve_high_availability, config.serve_consolidation),
        )
        if on or consolidated
    )


def _namespace(
    cfg: SkyConfig,
    ctx: KubernetesSettings,
    context: str,
    kube_context_namespace: str | None,
    in_cluster_namespace: str | None,
    namespace_flag: str | None,
    dialect: Dialect = CURRENT,
) -> tuple[str, str]:
    """(namespace, where it came from)."""
    value, where = _pick(ctx.namespace, cfg.kubernetes.namespace, context, "namespace")
    if namespace_flag:
        return namespace_flag, "-n"
    if value is not None and dialect.config_namespace:
        return str(value), str(where)
    if in_cluster_namespace:
        return in_cluster_namespace, "the in-cluster service account's namespace"
    if kube_context_namespace:
        return kube_context_namespace, f"kubeconfig context {context}"
    return DEFAULT_NAMESPACE, "SkyPilot's fallback; nothing sets one"


def _pod_service_account(
    cfg: SkyConfig, ctx: KubernetesSettings, context: str, identity: str
) -> tuple[str, bool, list[str]]:
    """(the pods' service account, whether SkyPilot creates it, notes on a pod_config override).

    SkyPilot renders ``serviceAccountName`` from remote_identity, merges
    pod_config over the pod spec, and bootstrap_instances() then creates the
    account and its roles only if the name is its own.
    """
    account = DEFAULT_SERVICE_ACCOUNT if identity in IDENTITY_KEYWORDS else identity
    override, where = _pick(
        ctx.service_account_name, cfg.kubernetes.service_account_name, context, "pod_config"
    )
    notes: list[str] = []
    if override is not None:
        account = str(override)
        if account == DEFAULT_SERVICE_ACCOUNT:
            tail = "; it is SkyPilot's own name, so SkyPilot still creates it and its roles"
        else:
            tail = (
                " (overriding remote_identity), and SkyPilot creates no service account or "
                "roles; the kubeconfig user needs no rbac-bootstrap"
            )
        notes.append(f"{where}.spec.serviceAccountName is {account}: pods run as {account}{tail}")
    return account, account == DEFAULT_SERVICE_ACCOUNT, notes


def _ports(
    cfg: SkyConfig,
    ctx: KubernetesSettings,
    context: str,
    namespace: str,
    current_context: str | None,
) -> tuple[str, str]:
    """(port mode, a note on what it needs), as get_port_mode decides at launch."""
    value, where = _pick(ctx.ports, cfg.kubernetes.ports, context, "ports")
    if current_context == KIND_CONTEXT:
        mode = "ingress"
        origin = f"the current context is {KIND_CONTEXT}, which makes SkyPilot use ingress"
    else:
        mode = str(value) if value is not None else DEFAULT_PORT_MODE
        origin = f"from {where}" if where else "default"
        if mode not in PORT_MODES:
            # The schema accepts any case; KubernetesPortMode(mode) does not.
            raise ConfigError(
                cfg.source,
                str(where),
                f"{mode!r} is not a valid KubernetesPortMode: SkyPilot accepts the file but "
                f"fails at launch on context {context} (it compares exactly); write "
                f"{mode.lower()}",
            )
    if mode == "ingress":
        return mode, (
            f"ports is ingress ({origin}): SkyPilot exposes ports through the nginx ingress "
            "controller, so both identities need ingress"
        )
    if mode == "podip":
        return mode, f"ports is podip ({origin}): ports are reached on pod IPs; core covers it"
    return mode, (
        f"ports is loadbalancer ({origin}): exposed ports are LoadBalancer services in "
        f"{namespace}; core covers it"
    )


def _remote_identity(
    cfg: SkyConfig, ctx: KubernetesSettings, context: str, dialect: Dialect = CURRENT
) -> tuple[str, str, str | None]:
    """(identity in effect, where it came from, a note on a mapping match or None)."""
    value, where = _pick(
        ctx.remote_identity, cfg.kubernetes.remote_identity, context, "remote_identity"
    )
    if value is None:
        return DEFAULT_REMOTE_IDENTITY, "default", None
    if isinstance(value, str):
        return value, str(where), None
    assert isinstance(value, IdentityMap)
    found = value.lookup(context) if dialect.identity_globs else value.exact(context)
    if found is None:
        patterns = ", ".join(p for p, _ in value.entries)
        if not dialect.identity_globs:
            patterns += f"; SkyPilot {dialect.name} matches names exactly, not patterns"
        raise ConfigError(
            cfg.source,
            str(where),
            f"no entry matches context {context!r} (entries: {patterns}); SkyPilot fails "
            "every launch on this context",
        )
    pattern, account = found
    note = f"remote_identity maps context {context} to {account}"
    if pattern != context:
        note += f" (entry {pattern!r}, the first matching pattern in file order)"
    return account, f"{where}[{pattern}]", note


def _identity_note(identity: str, source: str, overridden: bool) -> str:
    """Why remote_identity alone does or does not make SkyPilot create its account."""
    origin = "default" if source == "default" else f"from {source}"
    what = {
        "SERVICE_ACCOUNT": "",
        "LOCAL_CREDENTIALS": "SkyPilot copies the kubeconfig to its controllers, which then "
        "act as the kubeconfig user; ",
        "NO_UPLOAD": "SkyPilot uploads no credentials; ",
        DEFAULT_SERVICE_ACCOUNT: "SkyPilot's own service account, named explicitly; ",
    }.get(identity, "a custom service account; ")
    if overridden:
        tail = "pod_config names the pods' service account instead (see below)"
    elif identity in IDENTITY_KEYWORDS or identity == DEFAULT_SERVICE_ACCOUNT:
        tail = (
            f"SkyPilot creates {DEFAULT_SERVICE_ACCOUNT}, so the kubeconfig user needs "
            "rbac-bootstrap"
        )
    else:
        tail = "SkyPilot creates nothing, so the kubeconfig user needs no rbac-bootstrap"
    return f"remote_identity is {identity} ({origin}): {what}{tail}"


# --- the whole machine: contexts, then each context ---------------------------------------


@dataclass(frozen=True, slots=True)
class KubeView:
    """What SkyPilot sees of Kubernetes on this machine, besides its config file.

    ``contexts``: (name, namespace) of each kubeconfig context SkyPilot can list
    (see :func:`kube_view`); ``in_cluster``: a service-account token is mounted;
    ``in_cluster_namespace``: the namespace file beside it; ``env``: the
    environment variables SkyPilot reads.
    """

    contexts: tuple[tuple[str, str | None], ...] = ()
    current: str | None = None
    in_cluster: bool = False
    in_cluster_namespace: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def environ(self) -> dict[str, str]:
        return dict(self.env)

    @property
    def in_cluster_name(self) -> str:
        return in_cluster_context_name(self.environ)

    def kube_namespace(self, context: str) -> tuple[str | None, str | None]:
        """(kubeconfig namespace, in-cluster namespace) SkyPilot reads for ``context``.

        For the in-cluster context, ``$SKYPILOT_IN_CLUSTER_NAMESPACE``, else the
        service account's namespace file; failing both, the kubeconfig's context
        of that name (get_kube_config_context_namespace in
        sky/provision/kubernetes/utils.py). ``$SKYPILOT_IN_CLUSTER_NAMESPACE``
        never applies to kubeconfig contexts.
        """
        in_cluster_ns = None
        if context == self.in_cluster_name:
            in_cluster_ns = self.environ.get(ENV_IN_CLUSTER_NAMESPACE) or None
            if in_cluster_ns is None and self.in_cluster:
                in_cluster_ns = self.in_cluster_namespace
        kube_ns = dict(self.contexts).get(context)
        return kube_ns, in_cluster_ns


def kube_view(
    data: Mapping[str, Any] | None,
    *,
    in_cluster: bool = False,
    in_cluster_namespace: str | None = None,
    env: Mapping[str, str] | None = None,
) -> KubeView:
    """The contexts SkyPilot can list from a merged kubeconfig ``data`` (None: no file).

    SkyPilot lists contexts with the kubernetes client's
    ``list_kube_config_contexts``, which loads the current context first
    (KubeConfigLoader.set_active_context in kubernetes/config/kube_config.py):
    without a current context, or when it or its cluster is missing, the call
    fails and SkyPilot sees no kubeconfig context at all.
    """
    env = os.environ if env is None else env
    keep = (
        ENV_ALLOW_ALL_CONTEXTS,
        ENV_INCLUDES_IN_CLUSTER,
        ENV_IN_CLUSTER_NAMESPACE,
        ENV_IN_CLUSTER_CONTEXT_NAME,
    )
    view_env = tuple((k, env[k]) for k in keep if k in env)
    base = KubeView(in_cluster=in_cluster, in_cluster_namespace=in_cluster_namespace, env=view_env)
    if data is None:
        return base
    contexts = [c for c in data.get("contexts") or [] if isinstance(c, dict)]
    clusters = {c.get("name") for c in data.get("clusters") or [] if isinstance(c, dict)}
    current = data.get("current-context")
    by_name = {c.get("name"): c.get("context") or {} for c in contexts}
    problem = None
    if not isinstance(current, str) or not current:
        problem = "it has no current-context"
    elif current not in by_name:
        problem = f"its current-context {current} names no context"
    elif by_name[current].get("cluster") not in clusters:
        problem = f"the cluster of its current-context {current} is missing"
    if problem is not None:
        return replace(
            base,
            warnings=(
                f"SkyPilot sees no kubeconfig context: {problem}, and SkyPilot's kubeconfig "
                "loader (the kubernetes client) then fails to list any",
            ),
        )
    return replace(
        base,
        contexts=tuple(
            (str(c["name"]), _context_namespace(c.get("context") or {})) for c in contexts
        ),
        current=current,
    )


def _context_namespace(body: Mapping[str, Any]) -> str | None:
    value = body.get("namespace")
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class ContextSetup:
    """One context SkyPilot uses: its derivation, or why SkyPilot fails there."""

    context: str
    derivation: Derivation | None
    error: ConfigError | None = None


def resolve(
    config: SkyConfig | None, view: KubeView, dialect: Dialect = CURRENT
) -> tuple[ContextSelection, tuple[ContextSetup, ...]]:
    """Every context SkyPilot uses on this machine, each derived as SkyPilot derives it
    (as the release line ``dialect`` reads the config)."""
    env = view.environ
    selection = select_contexts(
        config,
        [name for name, _ in view.contexts],
        view.current,
        in_cluster=view.in_cluster,
        env=env,
        dialect=dialect,
    )
    if view.warnings:
        selection = replace(selection, warnings=(*view.warnings, *selection.warnings))
    out = []
    for name in selection.contexts:
        kube_ns, in_cluster_ns = view.kube_namespace(name)
        try:
            derivation = derive(
                config,
                name,
                kube_ns,
                in_cluster_ns,
                current_context=view.current,
                dialect=dialect,
            )
        except ConfigError as exc:
            out.append(ContextSetup(name, None, exc))
        else:
            out.append(ContextSetup(name, derivation))
    return selection, tuple(out)


__all__ = [
    "ALL_CONTEXTS",
    "DEFAULT_NAMESPACE",
    "DEFAULT_SERVICE_ACCOUNT",
    "IDENTITY_KEYWORDS",
    "PORT_MODES",
    "CheckIdentity",
    "ContextSelection",
    "ContextSetup",
    "Derivation",
    "IdentityMap",
    "KubeView",
    "KubernetesSettings",
    "SkyConfig",
    "config_location",
    "contexts_to_check",
    "default_config_path",
    "derive",
    "display_path",
    "high_availability_specified",
    "kube_view",
    "load_sky_config",
    "parse_sky_config",
    "parse_sky_config_text",
    "refuse_for_release",
    "resolve",
    "select_contexts",
]

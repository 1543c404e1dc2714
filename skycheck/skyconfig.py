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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skycheck import yamlio
from skycheck.catalogue import KNOWN_FEATURES
from skycheck.errors import ConfigError, InputError
from skycheck.names import is_dns_label, is_dns_subdomain

# SkyPilot's own service account (sky/provision/kubernetes/utils.py,
# DEFAULT_SERVICE_ACCOUNT_NAME). bootstrap_instances() in
# sky/provision/kubernetes/config.py creates it and its roles exactly when the
# pod's serviceAccountName equals this name.
DEFAULT_SERVICE_ACCOUNT = "skypilot-service-account"
DEFAULT_NAMESPACE = "default"
DEFAULT_REMOTE_IDENTITY = "SERVICE_ACCOUNT"
# remote_identity keywords under which pods run as DEFAULT_SERVICE_ACCOUNT.
# Compared case-sensitively, as SkyPilot does for Kubernetes (its schema types
# kubernetes.remote_identity as a free string; any other string is an SA name).
# NONE is from SkyPilot nightlies; 0.14.1 reads it as a service account name.
IDENTITY_KEYWORDS = ("SERVICE_ACCOUNT", "LOCAL_CREDENTIALS", "NO_UPLOAD", "NONE")
PORT_MODES = ("loadbalancer", "ingress", "podip")
DEFAULT_PORT_MODE = "loadbalancer"
ALL_CONTEXTS = "all"
# SSH Node Pool contexts: SkyPilot's Kubernetes cloud never uses them.
SSH_CONTEXT_PREFIX = "ssh-"

# Environment variables SkyPilot reads to find the user config
# (sky/skypilot_config.py): SKYPILOT_CONFIG replaces every other file.
ENV_CONFIG = "SKYPILOT_CONFIG"
ENV_GLOBAL_CONFIG = "SKYPILOT_GLOBAL_CONFIG"
USER_CONFIG = "~/.sky/config.yaml"

_GLOB_CHARS = frozenset("*?[")


# --- the parsed file ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdentityMap:
    """``remote_identity`` given per context: context name or glob -> service account.

    ``form`` is ``mapping`` (what SkyPilot's Kubernetes schema accepts) or
    ``list`` (single-key mappings, the syntax SkyPilot uses for AWS).
    """

    entries: tuple[tuple[str, str], ...]
    form: str = "mapping"

    def lookup(self, context: str) -> tuple[str, str] | None:
        """Return (pattern, service account) for ``context``, or None.

        An exact name wins (SkyPilot 0.14.1 looks the context up by name:
        ``remote_identity.get(context)`` in sky/clouds/kubernetes.py); failing
        that, the first glob that matches (``fnmatchcase``: context names are
        case-sensitive on every platform).
        """
        for pattern, account in self.entries:
            if pattern == context:
                return pattern, account
        for pattern, account in self.entries:
            if fnmatch.fnmatchcase(context, pattern):
                return pattern, account
        return None


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
    warnings: tuple[str, ...] = ()

    def context_config(self, context: str) -> KubernetesSettings:
        """``kubernetes.context_configs.<context>`` (exact name, as SkyPilot looks it up)."""
        for name, settings in self.context_configs:
            if name == context:
                return settings
        return KubernetesSettings()


# --- loading -------------------------------------------------------------------------------


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """The config file SkyPilot reads on this machine.

    ``$SKYPILOT_CONFIG`` if set (it replaces every other file), else
    ``$SKYPILOT_GLOBAL_CONFIG``, else ``~/.sky/config.yaml``.
    """
    env = os.environ if env is None else env
    for var in (ENV_CONFIG, ENV_GLOBAL_CONFIG):
        if env.get(var):
            return Path(env[var]).expanduser()
    return Path(USER_CONFIG).expanduser()


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
    if (
        isinstance(settings.remote_identity, IdentityMap)
        and settings.remote_identity.form == "list"
    ):
        warnings.append(
            "kubernetes.remote_identity is a list of single-key mappings (the AWS syntax); "
            "SkyPilot's Kubernetes schema accepts only a string or a mapping of context "
            "name to service account, so SkyPilot may reject this file"
        )
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
        jobs_high_availability=p.high_availability(doc, "jobs"),
        serve_high_availability=p.high_availability(doc, "serve"),
        warnings=tuple(warnings),
    )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    return names.get(type(value), f"a {type(value).__name__}")


@dataclass(frozen=True)
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
                raise self.fail(
                    where,
                    f"{text!r} is neither one of {', '.join(IDENTITY_KEYWORDS)} (case "
                    "matters) nor a valid service account name (DNS-1123 subdomain)",
                )
            raise self.fail(
                where, f"{text!r} is not a valid service account name (DNS-1123 subdomain)"
            )
        return text

    def ports(self, value: Any, where: str) -> str | None:
        if value is None:
            return None
        # SkyPilot's schema uses a case-insensitive enum for ports.
        if not isinstance(value, str) or value.lower() not in PORT_MODES:
            raise self.fail(where, f"must be one of {', '.join(PORT_MODES)}")
        return value.lower()

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
        if isinstance(value, dict):
            form = "mapping"
            items = [(k, v, f"{where}.{k}") for k, v in value.items()]
        elif isinstance(value, list):
            form = "list"
            items = []
            for i, item in enumerate(value):
                if not isinstance(item, dict) or len(item) != 1:
                    raise self.fail(
                        f"{where}[{i}]",
                        "must be a mapping with exactly one context: service-account entry",
                    )
                ((k, v),) = item.items()
                items.append((k, v, f"{where}[{i}].{k}"))
        else:
            raise self.fail(
                where,
                f"must be a string or a mapping of context to service account, got {_kind(value)}",
            )
        if not items:
            raise self.fail(where, "must not be empty")
        for key, account, at in items:
            if not isinstance(key, str) or not key:
                raise self.fail(at, "context names must be non-empty strings")
            entries.append((key, self.service_account(account, at, keywords=True)))
        return IdentityMap(tuple(entries), form)

    def pod_service_account(self, pod_config: Any, where: str) -> str | None:
        pod = self.mapping(pod_config, where)
        spec = self.mapping(pod.get("spec"), f"{where}.spec")
        value = spec.get("serviceAccountName")
        if value is None:
            return None
        return self.service_account(value, f"{where}.spec.serviceAccountName", keywords=False)

    def settings(self, body: dict[Any, Any], where: str, *, top_level: bool) -> KubernetesSettings:
        return KubernetesSettings(
            remote_identity=self.remote_identity(
                body.get("remote_identity"), f"{where}.remote_identity", top_level=top_level
            ),
            ports=self.ports(body.get("ports"), f"{where}.ports"),
            namespace=self.namespace(body.get("namespace"), f"{where}.namespace"),
            service_account_name=self.pod_service_account(
                body.get("pod_config"), f"{where}.pod_config"
            ),
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

    def high_availability(self, doc: dict[Any, Any], section: str) -> bool:
        body = self.mapping(doc.get(section), section)
        controller = self.mapping(body.get("controller"), f"{section}.controller")
        value = controller.get("high_availability")
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(
                f"{section}.controller.high_availability",
                f"must be true or false, got {_kind(value)}",
            )
        return value


# --- which contexts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContextSelection:
    """The contexts SkyPilot will use, and what the user should know about the choice."""

    contexts: tuple[str, ...]
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def select_contexts(
    config: SkyConfig | None, kubeconfig_context_names: Sequence[str], current: str | None
) -> ContextSelection:
    """Resolve ``kubernetes.allowed_contexts`` like SkyPilot's ``existing_allowed_contexts``.

    ``all``: every kubeconfig context; a list: those, in the file's order,
    skipping (with a warning) names the kubeconfig lacks; absent: the current
    context. SSH Node Pool contexts (``ssh-*``) are never used by SkyPilot's
    Kubernetes cloud. In a pod, pass the in-cluster context name among
    ``kubeconfig_context_names`` and as ``current`` (SkyPilot calls it
    ``in-cluster``).
    """
    available = list(dict.fromkeys(kubeconfig_context_names))
    allowed = config.allowed_contexts if config is not None else None
    notes: list[str] = []
    warnings: list[str] = []
    skipped_ssh: list[str] = []
    chosen: list[str] = []
    if allowed is None:
        if current is None:
            warnings.append(
                "no context to check: the kubeconfig has no current context and "
                "allowed_contexts is not set"
            )
        elif current.startswith(SSH_CONTEXT_PREFIX):
            skipped_ssh.append(current)
        else:
            chosen.append(current)
            notes.append(
                f"allowed_contexts is not set: SkyPilot uses the current context {current}"
            )
    elif allowed == ALL_CONTEXTS:
        for name in available:
            (skipped_ssh if name.startswith(SSH_CONTEXT_PREFIX) else chosen).append(name)
        notes.append(
            f"allowed_contexts is all: SkyPilot uses every kubeconfig context ({len(chosen)})"
        )
    else:
        missing: list[str] = []
        for name in allowed:
            if name.startswith(SSH_CONTEXT_PREFIX):
                skipped_ssh.append(name)
            elif name in available:
                chosen.append(name)
            else:
                missing.append(name)
        if missing:
            warnings.append(
                "kubernetes.allowed_contexts names "
                + ", ".join(missing)
                + ", not in the kubeconfig; SkyPilot ignores "
                + ("it" if len(missing) == 1 else "them")
            )
        notes.append("allowed_contexts lists " + (", ".join(chosen) or "no usable context"))
    if skipped_ssh:
        notes.append(
            "skipped SSH Node Pool contexts (SkyPilot's Kubernetes cloud does not use them): "
            + ", ".join(skipped_ssh)
        )
    if not chosen and not warnings:
        warnings.append("no context to check: SkyPilot would find Kubernetes disabled")
    return ContextSelection(tuple(chosen), tuple(notes), tuple(warnings))


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
    high_availability: bool
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
    kubeconfig into the cluster.

    Raises ConfigError when a per-context ``remote_identity`` mapping has no
    entry for the context: SkyPilot fails every launch there the same way.
    """
    cfg = config if config is not None else SkyConfig(source=USER_CONFIG)
    ctx = cfg.context_config(context_name)
    notes: list[str] = []
    warnings: list[str] = list(cfg.warnings)

    namespace, ns_source = _namespace(
        cfg, ctx, context_name, kube_context_namespace, in_cluster_namespace, namespace_flag
    )
    notes.append(
        f"namespace {namespace} (from {ns_source}); SkyPilot never creates it, so it must exist"
    )

    identity, identity_source, mapped = _remote_identity(cfg, ctx, context_name)
    account, creates, account_notes = _pod_service_account(cfg, ctx, context_name, identity)
    if mapped is not None:
        notes.append(mapped)
    notes.append(_identity_note(identity, identity_source, overridden=bool(account_notes)))
    notes += account_notes
    if identity == "NONE":
        notes.append(
            "remote_identity NONE is understood by SkyPilot nightlies; SkyPilot 0.14.1 reads "
            "it as a service account named NONE, which is not a valid name"
        )
    if identity == "LOCAL_CREDENTIALS" and exec_auth:
        warnings.append(
            f"context {context_name}: remote_identity is LOCAL_CREDENTIALS and the kubeconfig "
            "user authenticates with an exec plugin: SkyPilot copies the kubeconfig into the "
            "cluster, where the plugin is missing and authentication fails; use "
            "SERVICE_ACCOUNT or a custom service account"
        )

    port_mode, ports_note = _ports(cfg, ctx, context_name, namespace)
    notes.append(ports_note)
    ha_keys = [
        key
        for key, on in (
            ("jobs.controller.high_availability", cfg.jobs_high_availability),
            ("serve.controller.high_availability", cfg.serve_high_availability),
        )
        if on
    ]
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


def _namespace(
    cfg: SkyConfig,
    ctx: KubernetesSettings,
    context: str,
    kube_context_namespace: str | None,
    in_cluster_namespace: str | None,
    namespace_flag: str | None,
) -> tuple[str, str]:
    """(namespace, where it came from)."""
    value, where = _pick(ctx.namespace, cfg.kubernetes.namespace, context, "namespace")
    if namespace_flag:
        return namespace_flag, "-n"
    if value is not None:
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
    cfg: SkyConfig, ctx: KubernetesSettings, context: str, namespace: str
) -> tuple[str, str]:
    """(port mode, a note on what it needs)."""
    value, where = _pick(ctx.ports, cfg.kubernetes.ports, context, "ports")
    mode = str(value) if value is not None else DEFAULT_PORT_MODE
    origin = f"from {where}" if where else "default"
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
    cfg: SkyConfig, ctx: KubernetesSettings, context: str
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
    found = value.lookup(context)
    if found is None:
        patterns = ", ".join(p for p, _ in value.entries)
        raise ConfigError(
            cfg.source,
            str(where),
            f"no entry matches context {context!r} (entries: {patterns}); SkyPilot fails "
            "every launch on this context",
        )
    pattern, account = found
    note = f"remote_identity maps context {context} to {account}"
    if pattern != context:
        note += f" (entry {pattern!r}, the first matching pattern)"
    if pattern != context and any(c in pattern for c in _GLOB_CHARS):
        # SkyPilot 0.14.1 looks the context up by exact name; a glob match is
        # skycheck's reading, and SkyPilot may fail with "Context ... not found
        # in remote identities from config.yaml".
        note += "; SkyPilot 0.14.1 matches context names exactly, not as patterns"
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


__all__ = [
    "ALL_CONTEXTS",
    "DEFAULT_NAMESPACE",
    "DEFAULT_SERVICE_ACCOUNT",
    "IDENTITY_KEYWORDS",
    "PORT_MODES",
    "CheckIdentity",
    "ContextSelection",
    "Derivation",
    "IdentityMap",
    "KubernetesSettings",
    "SkyConfig",
    "contexts_to_check",
    "default_config_path",
    "derive",
    "display_path",
    "load_sky_config",
    "parse_sky_config",
    "parse_sky_config_text",
    "select_contexts",
]

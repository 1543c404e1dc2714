"""Credentials from a kubeconfig ``exec`` plugin, fetched within the run's deadline.

kubectl runs the plugin and reads an ExecCredential from its stdout
(k8s.io/client-go/plugin/pkg/client/auth/exec/exec.go). skycheck does the same
itself rather than through the kubernetes client, whose ExecProvider waits for
the plugin without a bound: a plugin that waits for a login (an SSO prompt)
would hang a CI job. Here the plugin is killed (with its process group) when
``--timeout`` runs out, and the run is undecided (exit 3).

Relative ``command`` paths containing a path separator are resolved against
the kubeconfig file's directory; bare names are looked up in PATH, as
k8s.io/client-go/tools/clientcmd/loader.go (GetAuthInfoFileReferences) does.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skycheck.errors import ConfigError, UndecidedError
from skycheck.secrets import register

API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
_MODES = ("Never", "IfAvailable", "Always")


@dataclass(frozen=True, slots=True)
class Credential:
    """What the plugin returned: a bearer token, or a client certificate and key (PEM)."""

    token: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None

    def as_user(self) -> dict[str, str]:
        """The kubeconfig user entry these credentials stand for."""
        if self.token:
            return {"token": self.token}
        assert self.client_certificate is not None and self.client_key is not None
        return {
            "client-certificate-data": base64.b64encode(self.client_certificate.encode()).decode(),
            "client-key-data": base64.b64encode(self.client_key.encode()).decode(),
        }


@dataclass(frozen=True, slots=True)
class _Plugin:
    argv: list[str]
    name: str  # the command as the kubeconfig writes it, for messages
    api_version: str
    mode: str
    env: dict[str, str]
    provide_cluster_info: bool
    install_hint: str | None


def _parse(spec: Any, base: Path | None, source: str, where: str) -> _Plugin:
    field = f"{where}: exec"
    if not isinstance(spec, dict):
        raise ConfigError(source, field, "must be a mapping")
    command = spec.get("command")
    if not isinstance(command, str) or not command:
        raise ConfigError(source, f"{field}.command", "must be a non-empty string")
    api_version = spec.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise ConfigError(
            source, f"{field}.apiVersion", f"must be one of {', '.join(API_VERSIONS)}"
        )
    mode = spec.get("interactiveMode")
    if mode is None and api_version == API_VERSIONS[0]:
        # exec.go: "interactiveMode must be specified for ... v1"
        raise ConfigError(source, f"{field}.interactiveMode", f"is required for {api_version}")
    mode = mode or "IfAvailable"
    if mode not in _MODES:
        raise ConfigError(source, f"{field}.interactiveMode", f"must be one of {', '.join(_MODES)}")
    args = spec.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError(source, f"{field}.args", "must be a list of strings")
    env: dict[str, str] = {}
    for i, item in enumerate(spec.get("env") or []):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("value"), str)
        ):
            raise ConfigError(source, f"{field}.env[{i}]", "must have string name and value")
        env[item["name"]] = item["value"]
    path = command
    if os.sep in command and not os.path.isabs(command) and base is not None:
        path = str(base / command)
    elif os.sep not in command:
        path = shutil.which(command) or command
    hint = spec.get("installHint")
    return _Plugin(
        [path, *args],
        command,
        str(api_version),
        str(mode),
        env,
        spec.get("provideClusterInfo") is True,
        hint if isinstance(hint, str) and hint.strip() else None,
    )


def _cluster_info(cluster: dict[str, Any], base: Path | None) -> dict[str, Any]:
    """The cluster as an ExecCredential's spec.cluster (provideClusterInfo)."""
    info: dict[str, Any] = {"server": cluster.get("server", "")}
    for key in ("tls-server-name", "insecure-skip-tls-verify", "proxy-url"):
        if cluster.get(key):
            info[key] = cluster[key]
    ca = cluster.get("certificate-authority-data")
    if not ca and isinstance(cluster.get("certificate-authority"), str):
        ca_path = Path(cluster["certificate-authority"])
        if not ca_path.is_absolute() and base is not None:
            ca_path = base / ca_path
        try:
            ca = base64.b64encode(ca_path.read_bytes()).decode()
        except OSError:
            ca = None
    if ca:
        info["certificate-authority-data"] = ca
    for ext in cluster.get("extensions") or []:
        if isinstance(ext, dict) and ext.get("name") == "client.authentication.k8s.io/exec":
            info["config"] = ext.get("extension")
    return info


def fetch(
    spec: Any,
    *,
    cluster: dict[str, Any],
    user_base: Path | None,
    cluster_base: Path | None,
    timeout: float,
    source: str,
    where: str,
) -> Credential:
    """Run the plugin once and return its credentials, or raise (never hang past ``timeout``)."""
    plugin = _parse(spec, user_base, source, where)
    interactive = plugin.mode != "Never" and sys.stdin is not None and sys.stdin.isatty()
    if plugin.mode == "Always" and not interactive:
        raise UndecidedError(
            f"exec plugin {plugin.name} ({where}) needs a terminal (interactiveMode Always), "
            "and standard input is not one"
        )
    exec_info: dict[str, Any] = {
        "apiVersion": plugin.api_version,
        "kind": "ExecCredential",
        "spec": {"interactive": interactive},
    }
    if plugin.provide_cluster_info:
        exec_info["spec"]["cluster"] = _cluster_info(cluster, cluster_base)
    env = {**os.environ, **plugin.env, "KUBERNETES_EXEC_INFO": json.dumps(exec_info)}
    try:
        proc = subprocess.Popen(
            plugin.argv,
            stdin=None if interactive else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=None,  # the plugin's own messages reach the user, as with kubectl
            env=env,
            # Its own session when nobody can answer it: a timeout then kills the plugin and
            # everything it started, and nothing keeps our pipe open. An interactive plugin
            # keeps the terminal (only the plugin itself is killed).
            start_new_session=not interactive,
        )
    except OSError as exc:
        raise ConfigError(
            source,
            f"{where}: exec.command",
            f"cannot run exec plugin {plugin.name}: {exc.strerror or exc}",
            hint=plugin.install_hint,
        ) from None
    try:
        out, _ = proc.communicate(timeout=max(timeout, 0.1))
    except subprocess.TimeoutExpired:
        _kill(proc, group=not interactive)
        raise UndecidedError(
            f"exec plugin {plugin.name} ({where}) returned no credentials within "
            f"{max(timeout, 0.0):.0f} s (--timeout) and was stopped",
            hint="the plugin may be waiting for a login: log in first, or raise --timeout",
        ) from None
    if proc.returncode != 0:
        raise UndecidedError(
            f"exec plugin {plugin.name} ({where}) failed with exit code {proc.returncode}",
            hint=plugin.install_hint,
        )
    return _credential(out, plugin, where)


def _kill(proc: subprocess.Popen[bytes], *, group: bool) -> None:
    try:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:
        pass  # already gone
    if proc.stdout is not None:
        proc.stdout.close()
    # Never wait long: a process stuck in the kernel stays a zombie for the OS to reap.
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _credential(out: bytes, plugin: _Plugin, where: str) -> Credential:
    what = f"exec plugin {plugin.name} ({where})"
    try:
        data = json.loads(out)
    except ValueError:
        raise UndecidedError(f"{what} did not print an ExecCredential (not JSON)") from None
    status = data.get("status") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("kind") != "ExecCredential":
        raise UndecidedError(f"{what} did not print an ExecCredential")
    if data.get("apiVersion") != plugin.api_version:
        # exec.go rejects a credential of another version than the one it asked for.
        raise UndecidedError(
            f"{what} answered {data.get('apiVersion')!r}, expected {plugin.api_version}"
        )
    if not isinstance(status, dict):
        raise UndecidedError(f"{what} returned an ExecCredential without status")
    token = status.get("token")
    cert = status.get("clientCertificateData")
    key = status.get("clientKeyData")
    register(v for v in (token, key) if isinstance(v, str))
    if isinstance(key, str):  # and each line of the key, should one be printed alone
        register(line for line in key.splitlines() if len(line) >= 16 and "-----" not in line)
    if isinstance(token, str) and token:
        return Credential(token=token)
    if isinstance(cert, str) and cert and isinstance(key, str) and key:
        return Credential(client_certificate=cert, client_key=key)
    raise UndecidedError(f"{what} returned neither a token nor a client certificate and key")

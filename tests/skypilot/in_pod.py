"""Running SkyPilot's in-pod code as the pod's own service account, without a kubelet.

The lab's pods are KWOK's: nothing runs in them. What SkyPilot runs inside its head pod (the
hostNetwork probe's ConfigMap publish, the skylet's autodown) is driven from the venv
instead, as the pod would run it: with the pod's ServiceAccount token, CA and namespace at
``/var/run/secrets/kubernetes.io/serviceaccount`` (a TokenRequest token, in a private mount
namespace over a tmpfs at /run, so the host's /run is untouched), the in-cluster
environment (``KUBERNETES_SERVICE_HOST``/``PORT``, the downward-API ``SKYPILOT_POD_NAME`` and
``SKYPILOT_POD_UID``, ``SKYPILOT_IN_CLUSTER_CONTEXT_NAME``) and no kubeconfig. The
apiserver then authenticates the pod's account, and the audit log shows its requests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from tests.skypilot.lab import Identity, Lab

MOUNT = "/run/secrets/kubernetes.io/serviceaccount"  # /var/run is /run on the lab's host
# The wrapper: a private mount namespace, a tmpfs at /run, the account's files in place.
_SCRIPT = (
    f"mount -t tmpfs tmpfs /run && mkdir -p {MOUNT} && "
    'cp "$SKYLAB_POD_FILES"/token "$SKYLAB_POD_FILES"/ca.crt "$SKYLAB_POD_FILES"/namespace '
    f'{MOUNT}/ && exec "$0" "$@"'
)


class InPodError(RuntimeError):
    """The head pod or a private mount namespace is not available."""


@dataclass(frozen=True)
class PodAccount:
    """The head pod a step runs in, and the account it runs as."""

    pod: str
    uid: str
    namespace: str
    service_account: str

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def head_pod(lab: Lab, namespace: str) -> PodAccount:
    """The launched cluster's head pod in ``namespace`` (SkyPilot names it ``<name>-head``)."""
    found = lab.cp.kubectl("get", "pods", "-n", namespace, "-o", "json", check=True)
    heads = [
        p for p in json.loads(found.stdout)["items"] if p["metadata"]["name"].endswith("-head")
    ]
    if not heads:
        raise InPodError(f"no head pod in namespace {namespace}")
    pod = heads[0]
    return PodAccount(
        pod=pod["metadata"]["name"],
        uid=pod["metadata"]["uid"],
        namespace=namespace,
        service_account=pod["spec"].get("serviceAccountName") or "default",
    )


def prepare(
    lab: Lab, identity: Identity, account: PodAccount, work: Path, env: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    """(argv prefix, environment) that run a command as ``account`` inside its pod."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise InPodError("unshare is not installed (util-linux)")
    files = work / "pod-account"
    files.mkdir(exist_ok=True)
    (files / "token").write_text(lab.cp.token(account.namespace, account.service_account))
    (files / "namespace").write_text(account.namespace)
    shutil.copyfile(lab.cp.ca_cert, files / "ca.crt")
    server = urlsplit(lab.cp.server)
    pod_env = {k: v for k, v in env.items() if k != "KUBECONFIG"}
    pod_env.update(
        {
            "SKYLAB_POD_FILES": str(files),
            "KUBERNETES_SERVICE_HOST": server.hostname or "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(server.port),
            "SKYPILOT_POD_NAME": account.pod,
            "SKYPILOT_POD_UID": account.uid,
            # SkyPilot sets it on every pod: its own context then means in-cluster config.
            "SKYPILOT_IN_CLUSTER_CONTEXT_NAME": _context_name(identity),
        }
    )
    return [unshare, "-m", "--propagation", "private", "sh", "-c", _SCRIPT], pod_env


def available() -> bool:
    """Whether this host lets the lab make a private mount namespace (root, util-linux)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run(
        [unshare, "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs tmpfs /run"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def _context_name(identity: Identity) -> str:
    import yaml

    doc = yaml.safe_load(Path(identity.kubeconfig).read_text())
    return str(doc.get("current-context") or "")

"""Run one SkyPilot operation as one identity against the lab and say what happened.

API (used by the closed-loop tests and by :mod:`tests.skypilot.inventory`)::

    from tests.skypilot.lab import Lab
    from tests.skypilot.runner import OPERATIONS, run_operation

    run = run_operation(lab, "0.14.1", OPERATIONS["launch"], identity, {"kubernetes": {...}})
    run.outcome      # Outcome.COMPLETED / STOPPED_AT_EXEC / FORBIDDEN / ERROR / TIMEOUT
    run.forbidden    # the identity's 403 requests, in order (empty when none)
    run.requests     # every request of the identity in the run's window, deduplicated by
                     # auditID, in log order; Request(verb, group, resource, subresource,
                     # namespace, name, code, scope)
    run.permissions  # distinct Permission(verb, group, resource, subresource, scope, name)

Each run gets a private HOME with ``~/.sky/config.yaml`` written from the given dict (plus the
lab defaults in :data:`BASE_SKY_CONFIG`), the minimal offline catalog files, a fixed user hash
(so object names repeat from run to run), the identity's kubeconfig as ``KUBECONFIG``, and
afterwards every process still carrying that HOME is killed by pid (never ``sky api stop``,
which kills other runs' servers too: :func:`_stop_api_server`). Every step has a timeout.

``scope`` says how a rule would scope a request: ``namespace`` (SkyPilot's workload
namespace, the identity's context namespace), ``skypilot-system``, ``ingress-nginx``,
``cluster`` (cluster-scoped objects and all-namespace lists, whatever namespace the audit
event shows: a create of a cluster-scoped object can carry the request's namespace), or
``other:<ns>``. ``name`` is kept when it is fixed (the same for every user: e.g.
``skypilot-system``, ``skypilot-service-account``), ``$NAMESPACE`` for SkyPilot's namespace,
and ``None`` when it derives from a cluster, volume or user name.

Outcomes: ``completed`` (exit 0); ``forbidden`` (non-zero exit and at least one 403; the first
403 is ``forbidden[0]``); ``stopped-at-exec`` (non-zero exit at SkyPilot's first ``kubectl
exec``: the lab has no exec simulation); ``timeout``; ``error`` (anything else; ``tail`` holds
the last lines of output). A run that exits 0 can still have tolerated 403s in ``forbidden``.
An operation with ``expect`` (``check``: "Kubernetes: enabled") counts as failed when it exits 0
without printing it (``exit_code`` :data:`EXPECT_MISSING`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.build import cache_dir
from tests.skypilot import fixed_port, in_pod, venvs
from tests.skypilot.lab import INGRESS_NAMESPACE, Identity, Lab

SYSTEM_NAMESPACE = "skypilot-system"
# Fixed, so names SkyPilot derives from it (cluster_name_on_cloud, controller names) repeat.
USER_HASH = "abcd1234"
CLUSTER = "skylab"
VOLUME = "skylab-vol"
# Resources without a namespace (RBAC scope "cluster"), as the apiserver serves them.
CLUSTER_SCOPED = frozenset(
    {
        "nodes",
        "namespaces",
        "persistentvolumes",
        "clusterroles",
        "clusterrolebindings",
        "storageclasses",
        "runtimeclasses",
        "ingressclasses",
        "priorityclasses",
        "customresourcedefinitions",
        "csidrivers",
        "csinodes",
        "volumeattachments",
        "apiservices",
        "selfsubjectaccessreviews",
        "selfsubjectrulesreviews",
        "subjectaccessreviews",
        "tokenreviews",
        "certificatesigningrequests",
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    }
)
# Timeouts kept short: the lab answers in milliseconds, and pods are Running 60 ms after
# creation, so SkyPilot's own waits only matter when something is wrong.
# allowed_clouds: with no cached cloud list a fresh HOME would first check every cloud, and
# the offline lab makes each of those wait for a network timeout.
BASE_SKY_CONFIG: dict[str, Any] = {
    "allowed_clouds": ["kubernetes"],
    "kubernetes": {"provision_timeout": 20},
}
CATALOG_FILES = {
    "kubernetes/images.csv": (
        "Tag,ImageId,Region\n"
        "skypilot:custom-cpu-ubuntu-2204-v1,docker:us-docker.pkg.dev/sky-dev-465/skypilotk8s/"
        "skypilot:latest,\n"
        "skypilot:custom-gpu-ubuntu-2204-v1,docker:us-docker.pkg.dev/sky-dev-465/skypilotk8s/"
        "skypilot-gpu:latest,\n"
    ),
    "common/accelerators.csv": "AcceleratorName,Clouds\nH100,\"['Kubernetes']\"\n",
    "common/metadata.csv": "AcceleratorName,MemoryGB\nH100,80\n",
}
TAIL_LINES = 15
API_START_ATTEMPTS = 5
# Run.exit_code of a step that exited 0 without printing its operation's ``expect``.
EXPECT_MISSING = 256
# Run.exit_code of a step that exited 0 but printed its ``failed_if`` output.
STEP_FAILED = 257
# What `sky volumes delete` prints (exit code 0) when deleting a volume failed.
VOLUMES_DELETE_FAILED = r"Error deleting volumes"
# What `sky down` prints (exit code 0) for a cluster it failed to terminate.
DOWN_FAILED = r"Cluster\(s\) failed\. See details above"
API_SERVER_LOST = re.compile(
    r"HTTPConnectionPool\(host='127\.0\.0\.1', port=\d+\).*Connection refused"
)
EXEC_MARKERS = ("no exec found", "kubectl exec", "exec failed", "Failed to run command")


class Outcome(str, enum.Enum):
    """Where a run stopped."""

    COMPLETED = "completed"
    STOPPED_AT_EXEC = "stopped-at-exec"
    FORBIDDEN = "forbidden"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True, order=True)
class Permission:
    """What an RBAC rule must allow for one request (name ``None``: not a fixed name)."""

    scope: str
    group: str
    resource: str
    subresource: str
    verb: str
    name: str | None = None

    def label(self) -> str:
        """``verb group/resource/subresource @scope [name]`` for humans."""
        res = self.resource + (f"/{self.subresource}" if self.subresource else "")
        grp = self.group or "core"
        named = f" {self.name}" if self.name else ""
        return f"{self.verb} {grp}/{res} @{self.scope}{named}"

    def sort_key(self) -> tuple[str, ...]:
        """Order with no name first: a fixed-name request and a nameless one of the same
        rule (the 0.10 SSH jump pod's ``get pods`` by name beside a pod list) compare."""
        return (self.scope, self.group, self.resource, self.subresource, self.verb, self.name or "")


@dataclass(frozen=True)
class Request:
    """One audited request of the identity (non-resource URLs: resource ``""``, name = path)."""

    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str | None
    code: int
    scope: str
    # Made by a cleanup step (sky down, volumes delete) rather than the operation proper.
    cleanup: bool = False

    def permission(self) -> Permission:
        """The rule this request needs (for non-resource URLs: scope ``nonresource``)."""
        return Permission(
            self.scope, self.group, self.resource, self.subresource, self.verb, self.name
        )


@dataclass(frozen=True)
class Step:
    """One command of an operation: ``sky`` arguments, or a python snippet for the venv."""

    argv: tuple[str, ...] = ()
    python: str | None = None
    # Cleanup steps (``sky down``) always run; their failure does not change the outcome.
    cleanup: bool = False
    timeout: float = 180.0
    # Output that means the step failed although it exited 0: `sky volumes delete` catches
    # the error of the request, prints it and exits 0 (sky/client/cli/command.py).
    failed_if: str | None = None
    # A launch the lab stops at SkyPilot's first exec (no exec simulation): the step counts
    # as done once the identity's first exec was made and not refused (its pods exist), so
    # later steps can drive SkyPilot's own post-exec code against those pods.
    until_exec: bool = False
    # Run inside the launched cluster's head pod, as the pod's own service account through
    # in-cluster config (in_pod.py): what SkyPilot's pods do themselves.
    in_pod: bool = False

    def failed(self, code: int, output: str) -> bool:
        """Whether the step failed: non-zero exit, or ``failed_if`` in its output."""
        return code != 0 or bool(self.failed_if and re.search(self.failed_if, output))


@dataclass(frozen=True)
class Operation:
    """A named SkyPilot operation: its steps and the files it needs in the run dir."""

    name: str
    steps: tuple[Step, ...]
    files: tuple[tuple[str, str], ...] = ()
    # Output the main steps must print to count as completed: `sky check` exits 0 even when
    # it disables Kubernetes, so its exit code alone cannot tell.
    expect: str | None = None
    # Give the run's LoadBalancer Services a fake ingress IP (Lab.fake_load_balancers).
    load_balancers: bool = False


@dataclass(frozen=True)
class Run:
    """What one operation did: exit code, where it stopped, and the identity's requests."""

    operation: str
    version: str
    exit_code: int
    outcome: Outcome
    reason: str
    tail: str
    seconds: float
    requests: tuple[Request, ...] = field(default_factory=tuple)
    # A cleanup step (``sky down``, ``sky volumes delete``) exited non-zero.
    cleanup_failed: bool = False
    # In-pod steps: the pod's own account (username) and the requests it made.
    pod_account: str = ""
    pod_requests: tuple[Request, ...] = field(default_factory=tuple)

    @property
    def api_server_lost(self) -> bool:
        """SkyPilot's client lost its API server mid-operation: another SkyPilot on the
        machine killed it (``sky api stop`` of 0.10 to 0.13 kills every
        ``-m sky.server.server`` process, whatever its port; the lab no longer calls it, but
        a user's SkyPilot on the same machine may). Such a run says nothing about permissions."""
        return bool(API_SERVER_LOST.search(self.tail))

    @property
    def forbidden(self) -> tuple[Request, ...]:
        """The identity's 403 requests, in order."""
        return tuple(r for r in self.requests if r.code == 403)

    @property
    def permissions(self) -> list[Permission]:
        """Distinct permissions of the run's resource requests, sorted."""
        return sorted(
            {r.permission() for r in self.requests if r.scope != "nonresource"},
            key=Permission.sort_key,
        )

    @property
    def main_permissions(self) -> list[Permission]:
        """Distinct permissions of the main steps' requests (cleanup steps left out)."""
        return sorted(
            {r.permission() for r in self.requests if r.scope != "nonresource" and not r.cleanup},
            key=Permission.sort_key,
        )


TASK_YAML = """\
name: skylab-task
resources:
  infra: kubernetes
  cpus: 1
  memory: 1
run: echo hello
"""
VOLUME_YAML = f"""\
name: {VOLUME}
type: k8s-pvc
infra: kubernetes
size: 1Gi
config:
  access_mode: ReadWriteOnce
"""
# The same volume naming the lab's StorageClass: SkyPilot then reads that class by name.
VOLUME_STORAGE_CLASS_YAML = VOLUME_YAML + "  storage_class_name: lab-hostpath\n"
# A hostPath volume whose deletion cleans the host directory: SkyPilot runs a DaemonSet for it.
VOLUME_HOSTPATH_YAML = f"""\
name: {VOLUME}
type: k8s-hostpath
infra: kubernetes
config:
  host_path: /tmp/skylab-hostpath
  cleanup_on_deletion: true
"""
FUSE_SNIPPET = """\
import os, sys
from sky.provision.kubernetes import config, utils
ctx = utils.get_current_kube_config_context_name()
ns = utils.get_kube_config_context_namespace(ctx)
# What a launch needing FUSE does (provision/kubernetes/config.py): make sure skypilot-system
# exists (its RBAC part is the launch scenario's), then set up the fusermount DaemonSet.
utils.create_namespace('skypilot-system', ctx)
config._configure_fuse_mounting({
    'context': ctx,
    'namespace': ns,
    'skypilot_system_namespace': 'skypilot-system',
})
print('fuse mounting configured')
"""
_DOWN = Step(("down", "-y", CLUSTER), cleanup=True, timeout=120.0, failed_if=DOWN_FAILED)
# What SkyPilot does after its first exec, driven through its own functions once a real
# launch has made the pods (the lab has no exec simulation, so the launch stops there).
# Each snippet loads the launched cluster's handle from the run's HOME, as SkyPilot's API
# server does, and exits non-zero when SkyPilot's call raises or finds nothing.
_HANDLE = f"""\
from sky import global_user_state
handle = global_user_state.get_handle_from_cluster_name({CLUSTER!r})
assert handle is not None, 'the launch left no cluster record'
provider = global_user_state.get_cluster_yaml_dict(handle.cluster_yaml)['provider']
cloud = repr(handle.launched_resources.cloud)
name = handle.cluster_name_on_cloud
"""
PORTS_SNIPPET = (
    _HANDLE
    + """\
from sky import provision as provision_lib
# The launch once its pods run (CloudVmRayBackend._open_ports): the ports' Service.
provision_lib.open_ports(cloud, name, ['8080'], provider)
# sky status --endpoints (backend_utils.get_endpoints -> provision.query_ports).
endpoints = provision_lib.query_ports(cloud, name, ['8080'], head_ip=None, provider_config=provider)
print('endpoints:', endpoints)
assert endpoints.get(8080), 'no endpoint for port 8080'
# sky launch --ports 8081 on the existing cluster: its ports' Service replaced.
provision_lib.open_ports(cloud, name, ['8080', '8081'], provider)
endpoints = provision_lib.query_ports(
    cloud, name, ['8080', '8081'], head_ip=None, provider_config=provider
)
print('endpoints:', endpoints)
assert endpoints.get(8081), 'no endpoint for port 8081'
print('ports opened and queried')
"""
)
AUTODOWN_SNIPPET = (
    _HANDLE
    + """\
from sky.provision.kubernetes import utils as kubernetes_utils
# sky launch -i 10 --down / sky autostop -i 10 --down (CloudVmRayBackend.set_autostop).
kubernetes_utils.set_autodown_annotations(handle, 10, down=True)
# sky autostop --cancel: the annotations removed.
kubernetes_utils.set_autodown_annotations(handle, -1)
print('autodown annotations set and removed')
"""
)
# Inside the head pod, as the pod's own account (Step.in_pod; in_pod.py).
PROBE_SNIPPET = (
    _HANDLE
    + """\
from sky.provision.kubernetes import host_network_probe as probe
from sky.provision.kubernetes import utils as kubernetes_utils
# What a hostNetwork head pod runs before ray start (the pod template's bootstrap): publish
# the probed ports to the <cluster>-ray-ports ConfigMap; a failed publish stops ray start.
args = [
    '--mode', 'head', '--env-file', 'ray-ports.env',
    '--configmap-name', probe.ray_ports_configmap_name(name),
    '--configmap-namespace', kubernetes_utils.get_namespace_from_config(provider),
]
probe.main(args)
# The head container restarted: the ConfigMap exists, so the publish replaces it (409, then
# a get and an update).
probe.main(args)
print('ray ports published')
"""
)
SKYLET_AUTODOWN_SNIPPET = (
    _HANDLE
    + """\
from sky import provision as provision_lib
from sky.provision.kubernetes import instance as k8s_instance
# The skylet's autodown in the head pod (skylet/events.py _stop_cluster_with_new_provisioner):
# an Event breadcrumb (best effort), then the cluster's pods and services deleted.
k8s_instance.emit_autostop_event_best_effort(provider, name)
provision_lib.terminate_instances(cloud, name, provider)
print('cluster terminated from its head pod')
"""
)


_LAUNCH_PORTS = (
    "launch",
    "-y",
    "-c",
    CLUSTER,
    "--infra",
    "kubernetes",
    "--ports",
    "8080",
    "task.yaml",
)


def _volumes_operation(name: str, volume_yaml: str, delete_timeout: float = 180.0) -> Operation:
    """``sky volumes apply`` of ``volume_yaml``, then ``sky volumes delete`` as its cleanup."""
    return Operation(
        name,
        (
            Step(("volumes", "apply", "-y", "volume.yaml")),
            Step(
                ("volumes", "delete", "-y", VOLUME),
                cleanup=True,
                timeout=delete_timeout,
                failed_if=VOLUMES_DELETE_FAILED,
            ),
        ),
        (("volume.yaml", volume_yaml),),
    )


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("check", (Step(("check", "kubernetes")),), expect=r"Kubernetes: enabled"),
        Operation("show-gpus", (Step(("show-gpus", "--infra", "kubernetes")),)),
        # Before 0.10.5 show-gpus asks the cluster only once `sky check` has enabled
        # Kubernetes in this HOME (sky/client/cli/command.py: enabled_clouds).
        Operation(
            "show-gpus-after-check",
            (Step(("check", "kubernetes")), Step(("show-gpus", "--infra", "kubernetes"))),
        ),
        Operation("status-kubernetes", (Step(("status-kubernetes",)),)),
        Operation(
            "launch",
            (Step(("launch", "-y", "-c", CLUSTER, "--infra", "kubernetes", "task.yaml")), _DOWN),
            (("task.yaml", TASK_YAML),),
        ),
        Operation(
            "launch-ports",
            (Step(_LAUNCH_PORTS), _DOWN),
            (("task.yaml", TASK_YAML),),
        ),
        Operation(
            "ports-lifecycle",
            (
                Step(_LAUNCH_PORTS, until_exec=True),
                Step(python=PORTS_SNIPPET, timeout=240.0),
                _DOWN,
            ),
            (("task.yaml", TASK_YAML),),
            load_balancers=True,
        ),
        Operation(
            "autodown",
            (
                Step(
                    ("launch", "-y", "-c", CLUSTER, "--infra", "kubernetes", "task.yaml"),
                    until_exec=True,
                ),
                Step(python=AUTODOWN_SNIPPET),
                _DOWN,
            ),
            (("task.yaml", TASK_YAML),),
        ),
        Operation(
            "host-network-probe",
            (
                Step(
                    ("launch", "-y", "-c", CLUSTER, "--infra", "kubernetes", "task.yaml"),
                    until_exec=True,
                ),
                Step(python=PROBE_SNIPPET, in_pod=True),
                _DOWN,
            ),
            (("task.yaml", TASK_YAML),),
        ),
        Operation(
            "skylet-autodown",
            (
                Step(
                    ("launch", "-y", "-c", CLUSTER, "--infra", "kubernetes", "task.yaml"),
                    until_exec=True,
                ),
                Step(python=SKYLET_AUTODOWN_SNIPPET, in_pod=True),
                _DOWN,
            ),
            (("task.yaml", TASK_YAML),),
        ),
        _volumes_operation("volumes", VOLUME_YAML),
        _volumes_operation("volumes-storage-class", VOLUME_STORAGE_CLASS_YAML),
        # SkyPilot waits up to 300 s for the cleanup DaemonSet (a 403 reading it is
        # swallowed and waited out).
        _volumes_operation("volumes-hostpath", VOLUME_HOSTPATH_YAML, delete_timeout=420.0),
        Operation("fuse-daemonset", (Step(python=FUSE_SNIPPET),)),
        Operation(
            "jobs-launch",
            (
                Step(
                    ("jobs", "launch", "-y", "-n", "skylab-job", "task.yaml"),
                    timeout=240.0,
                ),
                Step(("down", "-y", f"sky-jobs-controller-{USER_HASH}"), cleanup=True),
            ),
            (("task.yaml", TASK_YAML),),
        ),
    )
}


def run_operation(
    lab: Lab,
    version: str,
    operation: Operation,
    identity: Identity,
    sky_config: dict[str, Any],
    *,
    keep_dir: Path | None = None,
    cleanup: bool = True,
) -> Run:
    """Run ``operation`` with SkyPilot ``version`` as ``identity``; see the module docstring.

    ``cleanup=False`` skips the cleanup steps (necessity runs that withdraw a permission
    only the main steps use; the workload namespace is thrown away anyway).
    """
    if not venvs.complete(version):
        raise venvs.VenvError(
            f"SkyPilot {version} is not installed: python -m tests.skypilot venvs"
        )
    work = Path(tempfile.mkdtemp(prefix=f"skylab-{operation.name}-", dir=keep_dir))
    home = work / "home"
    _prepare_home(home, version, _merge(BASE_SKY_CONFIG, sky_config))
    for name, text in operation.files:
        (work / name).write_text(text)
    env = _env(home, identity)
    lab.wait_audit_quiet()
    offset = lab.audit_offset()
    started = time.monotonic()
    exit_code = 0
    outputs: list[str] = []
    timed_out = False
    cleanup_failed = False
    main_output = ""
    cleanup_offset = offset
    pod_account = ""
    pod_events: list[dict[str, Any]] = []  # the in-pod steps' requests, step by step
    # Releases with a fixed API server port take turns (the lock is held until it is stopped).
    with fixed_port_lock(version):
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(
                lab.fake_load_balancers(identity.namespace)
                if operation.load_balancers
                else contextlib.nullcontext()
            )
            _start_api_server(version, work, env)
            for step in operation.steps:
                if step.cleanup:
                    continue
                step_offset = lab.audit_offset()
                prefix: list[str] = []
                step_env = env
                if step.in_pod:
                    account = in_pod.head_pod(lab, identity.namespace)
                    pod_account = account.username
                    prefix, step_env = in_pod.prepare(lab, identity, account, work, env)
                code, out, expired = _run_step(version, step, work, step_env, prefix)
                if step.in_pod:
                    # Read per step: when the launcher is the pods' account too (the docs'
                    # setup), only the in-pod steps' requests are the pod's.
                    lab.wait_audit_quiet()
                    pod_events += lab.audit_events_since(step_offset, pod_account)
                if step.until_exec and code != 0 and not expired:
                    lab.wait_audit_quiet()
                    if _made_first_exec(lab.audit_events_since(step_offset, identity.username)):
                        code = 0
                outputs.append(out)
                main_output = "\n".join(outputs)
                timed_out = timed_out or expired
                if step.failed(code, out):
                    exit_code = code or STEP_FAILED
                    break  # later main steps depend on this one
            lab.wait_audit_quiet()
            cleanup_offset = lab.audit_offset()
            for step in operation.steps:
                if step.cleanup and cleanup and not timed_out:
                    code, out, _ = _run_step(version, step, work, env)
                    cleanup_failed = cleanup_failed or step.failed(code, out)
                    outputs.append(out)
        finally:
            _stop_api_server(home)
            stack.close()
    seconds = time.monotonic() - started
    lab.wait_audit_quiet()
    events = lab.audit_events_since(offset, identity.username)
    cleanup_ids = {
        e.get("auditID") for e in lab.audit_events_since(cleanup_offset, identity.username)
    }
    pod_ids = {e.get("auditID") for e in pod_events}
    requests = [
        dataclasses.replace(r, cleanup=True) if audit_id in cleanup_ids else r
        for r, audit_id in _requests_with_ids(events, identity.namespace)
        if audit_id not in pod_ids
    ]
    main_requests = requests  # cleanup requests belong to the run as well
    pod_requests = tuple(r for r, _ in _requests_with_ids(pod_events, identity.namespace))
    text = "\n".join(outputs)
    if exit_code == 0 and operation.expect and not re.search(operation.expect, main_output):
        exit_code = EXPECT_MISSING
    # Where the operation stopped is decided by its main steps alone: a 403 met by `sky down`
    # afterwards must not turn "stopped at the first exec" into "stopped by a 403".
    outcome, reason = _classify(
        exit_code,
        timed_out,
        main_output,
        [*(r for r in requests if not r.cleanup), *pod_requests],
    )
    if exit_code == EXPECT_MISSING:
        reason += f" (exit 0, but the output lacks {operation.expect!r})"
    if keep_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return Run(
        operation=operation.name,
        version=version,
        exit_code=exit_code,
        outcome=outcome,
        reason=reason,
        tail=_scrub(_tail(text), identity, work, lab.cp.server),
        seconds=seconds,
        requests=tuple(main_requests),
        cleanup_failed=cleanup_failed,
        pod_account=_scrub(pod_account, identity, work, lab.cp.server),
        pod_requests=pod_requests,
    )


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_SCHEMA_VERSIONS: dict[str, str] = {}
# The only variables of the caller's environment SkyPilot gets.
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "TERM", "TMPDIR")


def _catalog_schema(version: str) -> str:
    """SkyPilot's catalog schema version (the ``vN`` directory), read from the venv once."""
    if version not in _SCHEMA_VERSIONS:
        with tempfile.TemporaryDirectory(prefix="skylab-schema-") as home:
            _SCHEMA_VERSIONS[version] = _read_schema(version, home)
    return _SCHEMA_VERSIONS[version]


def _read_schema(version: str, home: str) -> str:
    result = subprocess.run(
        [
            str(venvs.python_bin(version)),
            "-c",
            "from sky.skylet import constants; print(constants.CATALOG_SCHEMA_VERSION)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        # Not the caller's environment: a SKYPILOT_CONFIG naming a missing file (as the
        # test suite sets) makes the import fail.
        env={**{k: v for k, v in os.environ.items() if k in _KEEP_ENV}, "HOME": home},
    )
    return result.stdout.strip()


def _prepare_home(home: Path, version: str, sky_config: dict[str, Any]) -> None:
    sky = home / ".sky"
    sky.mkdir(parents=True)
    (sky / "config.yaml").write_text(yaml.safe_dump(sky_config, sort_keys=True))
    catalogs = sky / "catalogs" / _catalog_schema(version)
    for name, text in CATALOG_FILES.items():
        path = catalogs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _env(home: Path, identity: Identity) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _KEEP_ENV}
    env.update(
        {
            "HOME": str(home),
            "KUBECONFIG": str(identity.kubeconfig),
            "SKYPILOT_USER_ID": USER_HASH,
            # A private API server port per run: the default (46580) is shared by every
            # SkyPilot on the machine, and a client finding someone else's server there
            # would use it, with that server's kubeconfig.
            "SKYPILOT_API_SERVER_LOCAL_PORT": str(_free_port()),
            "SKYPILOT_DISABLE_USAGE_COLLECTION": "1",
            "SKYPILOT_DEBUG": "0",
            # Loopback only: no proxy may see (or break) the lab's traffic.
            "NO_PROXY": "*",
            "no_proxy": "*",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",
        }
    )
    return env


def _free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        # Never the fixed port of releases before 0.14: their runs wait for it to be free.
        if port != venvs.FIXED_API_PORT:
            return port


@contextlib.contextmanager
def fixed_port_lock(version: str, wait: float = 300.0) -> Iterator[None]:
    """For a release with a fixed API server port: hold a machine-wide lock for the run and
    wait until the port can be bound as SkyPilot binds it (a previous run's server is
    stopped; see fixed_port.py). Other releases run side by side, each on a private port:
    no lock."""
    port = venvs.fixed_api_port(version)
    if port is None:
        yield
        return
    fixed_port.reserve(port)
    path = cache_dir() / f"skypilot-api-port-{port}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            fixed_port.wait_bindable(port, wait)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_step(
    version: str, step: Step, work: Path, env: dict[str, str], prefix: Sequence[str] = ()
) -> tuple[int, str, bool]:
    if step.python is not None:
        argv = [*prefix, str(venvs.python_bin(version)), "-c", step.python]
    else:
        argv = [*prefix, str(venvs.sky_bin(version)), *step.argv]
    proc = subprocess.Popen(
        argv,
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=step.timeout)
        return proc.returncode, out, False
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return -9, out + f"\n[lab] step timed out after {step.timeout:.0f}s", True


def _made_first_exec(events: Sequence[dict[str, Any]]) -> bool:
    """Whether these audit events hold an exec into a pod that was not refused."""
    return any(
        (e.get("objectRef") or {}).get("subresource") == "exec"
        and int(e.get("responseStatus", {}).get("code", 0)) != 403
        for e in events
    )


def _start_api_server(version: str, work: Path, env: dict[str, str]) -> None:
    """``sky api start`` before the operation, retried: on a loaded machine the server can
    miss SkyPilot's start-up deadline, which is no part of what the operation does."""
    for attempt in range(1, API_START_ATTEMPTS + 1):
        step = Step(("api", "start"), timeout=120.0)
        code, out, _ = _run_step(version, step, work, env)
        if code == 0:
            return
        log = Path(env["HOME"]) / ".sky" / "api_server" / "server.log"
        server_log = log.read_text(errors="replace") if log.is_file() else ""
        if attempt == API_START_ATTEMPTS:
            raise RuntimeError(
                f"sky api start failed {attempt} times:\n{_tail(out)}\n{_tail(server_log, 5)}"
            )
        _stop_api_server(Path(env["HOME"]))
        # A port picked free can be taken before the server binds it: pick another.
        env["SKYPILOT_API_SERVER_LOCAL_PORT"] = str(_free_port())


def _stop_api_server(home: Path) -> None:
    """Kill (by pid) the run's API server and every process it started.

    Not ``sky api stop``: from 0.10 to 0.13 at least it kills every SkyPilot API server
    process on the machine, whatever its port (sdk._local_api_server_running(kill=True)
    matches the command line alone), which broke runs of other labs side by side. The
    run's HOME is thrown away, so nothing a graceful stop saves is needed. A process is
    the run's when its environment holds this HOME, its working directory is in the run's
    directory, or it descends from one that is: the server's executors rename themselves
    (``SkyPilot:executor:...``), which can overwrite what /proc shows of their environment.
    """
    needle = f"HOME={home}".encode()
    work = home.parent
    # Repeat: a dying server's helpers (multiprocessing resource tracker) can appear late.
    for _ in range(3):
        pids = _with_descendants(_pids_of_run(needle, work))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)


def _pids_of_run(needle: bytes, work: Path) -> set[int]:
    pids: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if needle + b"\0" in environ + b"\0" or Path(cwd).is_relative_to(work):
            pids.add(int(entry.name))
    return pids


def _with_descendants(roots: set[int]) -> set[int]:
    """``roots`` and every process below them (read before any is killed and reparented)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(roots), list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found and child != os.getpid():
                found.add(child)
                todo.append(child)
    return found


def scope_of(resource: str, namespace: str, sky_namespace: str) -> str:
    """The RBAC scope of a request (see the module docstring)."""
    if resource in CLUSTER_SCOPED or not namespace:
        return "cluster"
    if namespace == sky_namespace:
        return "namespace"
    if namespace in (SYSTEM_NAMESPACE, INGRESS_NAMESPACE):
        return namespace
    return f"other:{namespace}"


_VOLATILE = re.compile(rf"{CLUSTER}|{USER_HASH}|{VOLUME}")


def fixed_name(name: str | None, sky_namespace: str) -> str | None:
    """The name as a rule could pin it, or ``None`` when it varies per user/cluster."""
    if not name:
        return None
    if _VOLATILE.search(name):
        return None
    # SkyPilot puts its namespace into some names (the skypilot-system RoleBinding).
    return name.replace(sky_namespace, "$NAMESPACE")


def _requests(events: Sequence[dict[str, Any]], sky_namespace: str) -> list[Request]:
    return [r for r, _ in _requests_with_ids(events, sky_namespace)]


def _requests_with_ids(
    events: Sequence[dict[str, Any]], sky_namespace: str
) -> list[tuple[Request, str]]:
    seen: set[str] = set()
    out: list[tuple[Request, str]] = []
    # In the order the apiserver received them: the log is in the order events were
    # written, and a failing exec (SPDY POST, 500) is written only when it ends, after
    # requests SkyPilot made later.
    events = sorted(events, key=lambda e: str(e.get("requestReceivedTimestamp", "")))
    for event in events:
        audit_id = event.get("auditID", "")
        # Watches and upgraded (exec, port-forward) requests log ResponseStarted and
        # ResponseComplete: one request, counted once.
        if audit_id in seen:
            continue
        seen.add(audit_id)
        code = int(event.get("responseStatus", {}).get("code", 0))
        ref = event.get("objectRef")
        verb = event.get("verb", "")
        if ref is None:
            path = event.get("requestURI", "").split("?")[0]
            out.append((Request(verb, "", "", "", "", path, code, "nonresource"), audit_id))
            continue
        resource = ref.get("resource", "")
        namespace = ref.get("namespace", "") or ""
        scope = scope_of(resource, namespace, sky_namespace)
        request = (
            Request(
                verb=verb,
                group=ref.get("apiGroup", "") or "",
                resource=resource,
                subresource=ref.get("subresource", "") or "",
                namespace="" if scope == "cluster" else namespace,
                name=fixed_name(ref.get("name"), sky_namespace),
                code=code,
                scope=scope,
            ),
            audit_id,
        )
        out.append(request)
    return out


def _classify(
    exit_code: int, timed_out: bool, text: str, requests: Sequence[Request]
) -> tuple[Outcome, str]:
    forbidden = [r for r in requests if r.code == 403]
    if timed_out:
        return Outcome.TIMEOUT, "a step timed out"
    if exit_code == 0:
        note = f" ({len(forbidden)} tolerated 403s)" if forbidden else ""
        return Outcome.COMPLETED, "exit 0" + note
    if forbidden:
        return Outcome.FORBIDDEN, f"403 on {forbidden[0].permission().label()}"
    lowered = text.lower()
    execs = [r for r in requests if r.subresource == "exec"]
    if execs or any(m.lower() in lowered for m in EXEC_MARKERS):
        return Outcome.STOPPED_AT_EXEC, "first kubectl exec (no exec simulation in the lab)"
    return Outcome.ERROR, _tail(text, 1) or f"exit {exit_code}"


def _scrub(text: str, identity: Identity, work: Path, server: str) -> str:
    """Replace what differs from run to run (names, paths, ports), so output can be compared."""
    for value, placeholder in (
        (str(work), "$RUN_DIR"),
        (server, "$APISERVER"),
        (identity.username, "$IDENTITY"),
        (identity.name, "$IDENTITY"),
        (identity.namespace, "$NAMESPACE"),
    ):
        text = text.replace(value, placeholder)
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:$PORT", text)


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    clean = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    kept = [line for line in clean.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])

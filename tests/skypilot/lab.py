"""The lab cluster: the test control plane with what real SkyPilot needs to get going.

On top of :class:`tests.cluster.controlplane.ControlPlane` (audit log on, Metadata level) a
:class:`Lab` runs kube-scheduler, KWOK (fake nodes that report Ready and pods that turn
Running without a kubelet), the extra kube-controller-manager controllers SkyPilot's objects
need, and seeds: CPU nodes, one GPU node (``nvidia.com/gpu`` capacity plus SkyPilot's
``skypilot.co/accelerator`` label, so ``show-gpus`` lists something), a default no-provisioner
StorageClass with hostPath PVs (PVCs bind), and an ``ingress-nginx`` namespace with the
``ingress-nginx-controller`` LoadBalancer Service and IngressClass SkyPilot looks for.

Everything else is an identity for SkyPilot to run as (:meth:`Lab.identity`): a ServiceAccount
token kubeconfig, never the admin's, because kwok, the scheduler and the controllers run as the
admin and only a separate user isolates SkyPilot's requests in the audit log.

Typical use (the ``skypilot_lab`` pytest fixture does this once per session)::

    with Lab(tmp_path) as lab:
        who = lab.identity("sky-admin", namespace=lab.fresh_namespace(), cluster_admin=True)
        run = run_operation(lab, "0.14.1", OPERATIONS["check"], who, {})

The lab cannot exercise: anything inside a pod (no kubelet, no container runtime: launches stop
at their first ``kubectl exec``), real LoadBalancers or ingress routing (fake status IPs), real
object stores, GPUs, node failures, and in-cluster SkyPilot (controllers run as pods here, so
the controller's own identity never makes a request).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster.build import LabBinaries, ensure_lab_binaries
from tests.cluster.controlplane import DEFAULT_CONTROLLERS, ControlPlane, ControlPlaneError
from tests.skypilot import fixed_port, venvs

# Controllers SkyPilot's objects need beyond the default test cluster's: owner-reference
# cleanup of pods and services (garbage collector), Deployments -> ReplicaSets -> Pods (HA
# controllers), DaemonSet pods (FUSE proxy), PV/PVC binding and protection (volumes), and the
# node lifecycle controller, which lifts the node.kubernetes.io/not-ready taint that the
# TaintNodesByCondition admission plugin puts on every new Node.
LAB_CONTROLLERS = (
    *DEFAULT_CONTROLLERS,
    "garbage-collector-controller",
    "endpointslice-controller",
    "replicaset-controller",
    "deployment-controller",
    "daemonset-controller",
    "persistentvolume-binder-controller",
    "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller",
    "node-lifecycle-controller",
)

# kwok's default pod CIDR (10.0.0.0/24) is the harness's service CIDR: pod IPs would collide.
POD_CIDR = "10.244.0.0/16"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
GPU_LABEL = "skypilot.co/accelerator"
GPU_NODE = "lab-gpu-0"
GPU_TYPE = "h100"
CPU_NODES = ("lab-cpu-0", "lab-cpu-1")
STORAGE_CLASS = "lab-hostpath"
PV_COUNT = 6
# A documentation-range address (RFC 5737): never routed, only shown by SkyPilot.
FAKE_LB_IP = "192.0.2.10"
INGRESS_NAMESPACE = "ingress-nginx"
# The namespace holding the lab's identities (ServiceAccounts SkyPilot runs as).
IDENTITY_NAMESPACE = "lab-identities"
AUDIT_FILE = "audit.log"


class LabError(RuntimeError):
    """The lab failed to start or to set something up."""


@dataclass(frozen=True)
class Identity:
    """Who SkyPilot runs as: a ServiceAccount, its kubeconfig, and SkyPilot's namespace."""

    name: str
    username: str
    kubeconfig: Path
    namespace: str


class Lab:
    """Control plane + scheduler + KWOK fake nodes + SkyPilot's expected cluster objects."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory).resolve()
        self.plane: ControlPlane | None = None
        self.binaries: LabBinaries | None = None
        self.started_seconds: float | None = None

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def cp(self) -> ControlPlane:
        """The running control plane."""
        if self.plane is None:
            raise LabError("lab not started")
        return self.plane

    def start(self) -> Lab:
        """Start every process and seed the cluster; ``started_seconds`` says how long it took."""
        self.binaries = ensure_lab_binaries()
        # Before the control plane's first connection can take it as an ephemeral port.
        fixed_port.reserve(venvs.FIXED_API_PORT)
        started = time.monotonic()
        plane = ControlPlane(
            self.directory / "cluster",
            audit=True,
            controllers=LAB_CONTROLLERS,
            binaries=self.binaries.base,
            # SkyPilot's fusermount-server DaemonSet runs privileged (as on real clusters,
            # where kubelets allow it); the harness's apiserver refuses that by default.
            extra_apiserver_args=("--allow-privileged=true",),
        )
        plane.start()
        self.plane = plane
        try:
            self._start_components()
            self._seed()
        except BaseException:
            self.stop()
            raise
        self.started_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Stop every lab process (scheduler and kwok first, etcd last)."""
        if self.plane is not None:
            self.plane.stop()
            self.plane = None

    # ------------------------------------------------------------------ components

    def _start_components(self) -> None:
        assert self.binaries is not None
        kubeconfig = str(self.cp.admin_kubeconfig)
        self.cp.spawn(
            "kube-scheduler",
            [
                str(self.binaries.kube_scheduler),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
            ],
        )
        self.cp.spawn(
            "kwok",
            [
                str(self.binaries.kwok),
                f"--kubeconfig={kubeconfig}",
                f"--config={self.binaries.kwok_stages}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
                f"--cidr={POD_CIDR}",
                "--node-ip=127.0.0.1",
                # No kubelet API (no exec simulation): port 0 keeps two labs from colliding.
                "--node-port=0",
                "--server-address=",
            ],
        )

    def _seed(self) -> None:
        for name in CPU_NODES:
            self.cp.apply(_node(name, cpu="8", memory="32Gi"))
        self.cp.apply(
            _node(GPU_NODE, cpu="16", memory="64Gi", gpus=8, labels={GPU_LABEL: GPU_TYPE})
        )
        self.cp.apply(_storage_objects())
        self.cp.apply(_ingress_objects())
        self._wait("nodes Ready without the not-ready taint", self._nodes_ready, 90.0)
        # A LoadBalancer Service gets an address from a cloud controller; fake one.
        self.set_load_balancer_ip(INGRESS_NAMESPACE, "ingress-nginx-controller")
        self.cp.create_namespace(IDENTITY_NAMESPACE)

    def _nodes_ready(self) -> bool:
        nodes = self.cp.get("/api/v1/nodes") or {}
        names = set(CPU_NODES) | {GPU_NODE}
        ready = set()
        for node in nodes.get("items", []):
            conditions = {c["type"]: c["status"] for c in node["status"].get("conditions", [])}
            taints = node["spec"].get("taints") or []
            if conditions.get("Ready") == "True" and not taints:
                ready.add(node["metadata"]["name"])
        return names <= ready

    def _wait(self, what: str, ready: Any, timeout: float) -> None:
        end = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > end:
                raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.2)

    # ------------------------------------------------------------------ helpers for runs

    def set_load_balancer_ip(self, namespace: str, name: str) -> None:
        """Give a LoadBalancer Service a (fake) ingress IP, as a cloud controller would."""
        body = {"status": {"loadBalancer": {"ingress": [{"ip": FAKE_LB_IP}]}}}
        self.cp.kubectl(
            "patch",
            "service",
            name,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(body),
            check=True,
        )

    @contextlib.contextmanager
    def fake_load_balancers(self, namespace: str) -> Iterator[None]:
        """While open, give each LoadBalancer Service of ``namespace`` that has no ingress IP
        the fake one (as the admin, every 0.2 s), as a cloud's controller would: SkyPilot's
        endpoint queries then find an address, as on a cluster with load balancers."""
        stop = threading.Event()

        def loop() -> None:
            base = f"/api/v1/namespaces/{namespace}/services"
            while not stop.wait(0.2):
                with contextlib.suppress(ControlPlaneError, OSError, KeyError):
                    for svc in (self.cp.get(base) or {}).get("items", []):
                        balancer = svc.get("status", {}).get("loadBalancer", {})
                        if svc["spec"].get("type") != "LoadBalancer" or balancer.get("ingress"):
                            continue
                        svc["status"] = {"loadBalancer": {"ingress": [{"ip": FAKE_LB_IP}]}}
                        name = svc["metadata"]["name"]
                        self.cp.request("PUT", f"{base}/{name}/status", svc, ok=(200, 409))

        thread = threading.Thread(target=loop, name="fake-load-balancers", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)

    def fresh_namespace(self, prefix: str = "sky") -> str:
        """A new namespace for SkyPilot's workload (SkyPilot never creates that one)."""
        name = f"{prefix}-{secrets.token_hex(3)}"
        self.cp.create_namespace(name, exist_ok=False)
        return name

    def identity(
        self,
        name: str,
        *,
        namespace: str,
        cluster_admin: bool = False,
        context: str = "skylab",
    ) -> Identity:
        """A ServiceAccount identity whose kubeconfig's context namespace is ``namespace``.

        ``cluster_admin`` binds the built-in ``cluster-admin`` ClusterRole; otherwise it holds
        nothing until the caller grants it something (see :meth:`grant`).
        """
        self.cp.create_service_account(IDENTITY_NAMESPACE, name)
        username = f"system:serviceaccount:{IDENTITY_NAMESPACE}:{name}"
        if cluster_admin:
            self.cp.apply(
                _binding("ClusterRoleBinding", f"lab-admin-{name}", None, "cluster-admin", name)
            )
        path = self.directory / "identities" / f"{name}.kubeconfig"
        self.cp.write_kubeconfig(
            path,
            token=self.cp.token(IDENTITY_NAMESPACE, name, expiration_seconds=6 * 3600),
            user_name=name,
            namespace=namespace,
            context_name=context,
            cluster_name=context,
        )
        return Identity(name=name, username=username, kubeconfig=path, namespace=namespace)

    def grant(self, who: Identity, rules_by_scope: dict[str, list[dict[str, Any]]]) -> None:
        """Grant ``who`` RBAC rules: scope ``"cluster"`` -> ClusterRole + ClusterRoleBinding,
        any other scope is a namespace name -> Role + RoleBinding there (namespace created)."""
        for scope, rules in sorted(rules_by_scope.items()):
            if not rules:
                continue
            role = f"lab-grant-{who.name}"
            if scope == "cluster":
                self.cp.apply(_role("ClusterRole", role, None, rules))
                self.cp.apply(_binding("ClusterRoleBinding", role, None, role, who.name))
            else:
                self.cp.create_namespace(scope)
                self.cp.apply(_role("Role", role, scope, rules))
                self.cp.apply(_binding("RoleBinding", role, scope, role, who.name))

    def reset_skypilot_objects(self) -> None:
        """Delete what a first SkyPilot run creates, so the next run is a first run again.

        The ``skypilot-system`` namespace (waits for the namespace controller), SkyPilot's
        roles and bindings in ``ingress-nginx``, the
        ClusterRoles/ClusterRoleBindings named ``skypilot-*``, and the lab's own cluster-wide
        grants (earlier identities lose them).
        """
        for kind in ("clusterrolebindings", "clusterroles"):
            listing = self.cp.get(f"/apis/rbac.authorization.k8s.io/v1/{kind}") or {}
            for item in listing.get("items", []):
                name = item["metadata"]["name"]
                if name.startswith(("skypilot-", "lab-grant-", "lab-admin-")):
                    self.cp.request(
                        "DELETE", f"/apis/rbac.authorization.k8s.io/v1/{kind}/{name}", ok=(200, 404)
                    )
        # SkyPilot's ingress role and binding live in ingress-nginx, which the lab keeps.
        for kind in ("rolebindings", "roles"):
            base = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{INGRESS_NAMESPACE}/{kind}"
            for item in (self.cp.get(base) or {}).get("items", []):
                name = item["metadata"]["name"]
                if name.startswith("skypilot-"):
                    self.cp.request("DELETE", f"{base}/{name}", ok=(200, 404))
        self.cp.delete_namespace("skypilot-system", wait=True, timeout=120.0)

    # ------------------------------------------------------------------ audit

    def audit_offset(self) -> int:
        """Current size of the audit log: events after it belong to what runs next."""
        with contextlib.suppress(FileNotFoundError):
            return self.cp.audit_log.stat().st_size
        return 0

    def audit_events_since(self, offset: int, username: str) -> list[dict[str, Any]]:
        """Audit events of ``username`` written after byte ``offset`` (complete lines only)."""
        events: list[dict[str, Any]] = []
        with self.cp.audit_log.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
        for line in data.split(b"\n"):
            if not line.strip() or username.encode() not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line still being written
            if event.get("user", {}).get("username") == username:
                events.append(event)
        return events

    def wait_audit_quiet(self) -> None:
        """Make sure every request already answered has reached the log (blocking mode)."""
        with contextlib.suppress(ControlPlaneError):
            self.cp.audit_mark()


def _node(
    name: str,
    *,
    cpu: str,
    memory: str,
    gpus: int = 0,
    labels: dict[str, str] | None = None,
) -> str:
    # ephemeral-storage: SkyPilot fits a requested disk size against it (check_instance_fits);
    # without it no node fits the jobs controller's default 50 GB disk.
    capacity: dict[str, Any] = {
        "cpu": cpu,
        "memory": memory,
        "ephemeral-storage": "500Gi",
        "pods": "110",
    }
    if gpus:
        capacity["nvidia.com/gpu"] = str(gpus)
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: "fake"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                **(labels or {}),
            },
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    }
    return json.dumps(node, indent=1)


def _storage_objects() -> str:
    items: list[dict[str, Any]] = [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "Immediate",
            "reclaimPolicy": "Delete",
        }
    ]
    for index in range(PV_COUNT):
        items.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"lab-pv-{index}"},
                "spec": {
                    "capacity": {"storage": "100Gi"},
                    "accessModes": ["ReadWriteOnce", "ReadWriteMany"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": STORAGE_CLASS,
                    "hostPath": {"path": f"/tmp/skycheck-lab-pv-{index}"},
                },
            }
        )
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=1)


def _ingress_objects() -> str:
    items = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": INGRESS_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "ingress-nginx-controller", "namespace": INGRESS_NAMESPACE},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"app.kubernetes.io/name": "ingress-nginx"},
                "ports": [
                    {"name": "http", "port": 80, "targetPort": 80},
                    {"name": "https", "port": 443, "targetPort": 443},
                ],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": "nginx"},
            "spec": {"controller": "k8s.io/ingress-nginx"},
        },
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=1)


def _role(kind: str, name: str, namespace: str | None, rules: list[dict[str, Any]]) -> str:
    metadata: dict[str, str] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return json.dumps(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": metadata,
            "rules": rules,
        },
        # Multi-line on purpose: ControlPlane.apply reads a one-line str as a file path.
        indent=1,
    )


def _binding(kind: str, name: str, namespace: str | None, role: str, sa_name: str) -> str:
    metadata: dict[str, str] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    role_kind = "Role" if kind == "RoleBinding" and role.startswith("lab-grant-") else "ClusterRole"
    return json.dumps(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": [
                {"kind": "ServiceAccount", "name": sa_name, "namespace": IDENTITY_NAMESPACE}
            ],
        },
        indent=1,
    )

"""Load benchmark: many contexts, the full catalogue, several identities, one API server.

A kubeconfig with 50 contexts (``--smoke``: 5), all pointing at the local test control plane,
is checked with ``--all-contexts --all-features`` as several identities:

- ``admin/SSAR``: the cluster admin checks itself (SelfSubjectAccessReview);
- ``sa/SSAR``: SkyPilot's service account (the docs' manifest) checks itself;
- ``admin->sa/SAR``: the admin checks the service account (``--sa``, SubjectAccessReview);
- ``ns-admin->sa/fallback``: a namespace admin checks it (LocalSubjectAccessReview and
  impersonation, the fallbacks).

For each run: wall time, peak RSS of the skycheck process (its VmHWM, see
``_wait_measuring_peak``), the number of requests the API server received, and the most
requests it had in flight at once, from the audit log (every request's received and
completed timestamps, between two marks).
``--max-inflight`` bounds the concurrency per API server (default 16); contexts sharing one
server share that bound. Figures only, no assertions: this is not a timed test.

Starts its own control plane (audit on) in a temporary directory unless ``--cluster-dir``
names one started with ``python -m tests.cluster up --audit``. Writes nothing to the repo.

    python benchmarks/load.py [--smoke] [--contexts N] [--cluster-dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cluster.controlplane import ControlPlane  # noqa: E402
from tests.integration._scenarios import docs_manifest  # noqa: E402

NAMESPACE = "load-bench"
# The harness's own admin token is also kube-controller-manager's: a dedicated cluster-admin
# service account keeps the admin scenarios' requests apart in the audit log.
LOAD_ADMIN = f"""
apiVersion: v1
kind: ServiceAccount
metadata: {{name: load-admin, namespace: {NAMESPACE}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: skycheck-load-admin}}
subjects: [{{kind: ServiceAccount, name: load-admin, namespace: {NAMESPACE}}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}
"""
NAMESPACE_ADMIN = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: bob-admin, namespace: {NAMESPACE}}}
subjects: [{{kind: User, name: bob, apiGroup: rbac.authorization.k8s.io}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}}
"""


@dataclass(frozen=True)
class Result:
    scenario: str
    contexts: int
    checks: int
    requests: int
    wall_s: float
    requests_per_s: float
    peak_rss_mib: float
    max_inflight: int
    exit_code: int


@contextlib.contextmanager
def control_plane(directory: str | None) -> Iterator[ControlPlane]:
    reuse = directory or os.environ.get("SKYCHECK_TEST_KUBECONFIG_DIR")
    if reuse:
        plane = ControlPlane.attach(Path(reuse))
        if not plane.audit:
            raise SystemExit(f"{reuse}: started without --audit; the audit log is the meter")
        yield plane
        return
    with tempfile.TemporaryDirectory(prefix="skycheck-load-") as tmp:
        print("starting a control plane (audit on)...", file=sys.stderr)
        with ControlPlane(Path(tmp), audit=True) as plane:
            yield plane


def prepare(plane: ControlPlane) -> tuple[str, str]:
    """The docs' service account, a cluster admin SA, bob as namespace admin.

    Returns the tokens of the admin SA and of sky-sa.
    """
    for name in (NAMESPACE, "skypilot-system", "ingress-nginx"):
        plane.create_namespace(name, exist_ok=True)
    plane.apply(_own_objects())
    return plane.token(NAMESPACE, "load-admin"), plane.token(NAMESPACE, "sky-sa")


def _own_objects() -> str:
    """What prepare() creates, minus shared namespaces: cluster-scoped names carry NAMESPACE."""
    docs = [d for d in docs_manifest(NAMESPACE).split("\n---") if "kind: Namespace" not in d]
    return "\n---".join([*docs, LOAD_ADMIN, NAMESPACE_ADMIN])


def cleanup(plane: ControlPlane) -> None:
    """Leave an attached cluster as we found it (a temporary one just goes away)."""
    plane.delete(_own_objects())
    plane.delete_namespace(NAMESPACE)


def write_kubeconfig(plane: ControlPlane, path: Path, token: str, contexts: int) -> Path:
    ca = plane.ca_cert.read_bytes()
    import base64

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": plane.server,
                    "certificate-authority-data": base64.b64encode(ca).decode(),
                },
            }
        ],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [
            {
                "name": f"ctx-{i:02d}",
                "context": {"cluster": "local", "user": "u", "namespace": NAMESPACE},
            }
            for i in range(contexts)
        ],
        "current-context": "ctx-00",
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(config, handle)
    return path


def events_between(plane: ControlPlane, start: str, end: str) -> list[dict[str, Any]]:
    """Audit events between two marks, across log rotation (the apiserver rotates at 100 MB).

    ControlPlane.audit_events_between reads audit.log only; a full run here writes tens of
    megabytes, so a mark may already sit in a rotated file.
    """
    rotated = sorted(plane.directory.glob("audit-*.log"))  # names carry the rotation time
    events: list[dict[str, Any]] = []
    inside = False
    for path in [*rotated, plane.audit_log]:
        with path.open() as handle:
            for line in handle:
                if not line.strip():
                    continue
                event = json.loads(line)
                uri = event.get("requestURI", "")
                if start in uri:
                    inside = True
                elif end in uri:
                    return events
                elif inside:
                    events.append(event)
    raise SystemExit("audit marks not found in the audit log")


def _timestamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def max_overlap(events: list[dict[str, Any]]) -> int:
    """Most requests in flight at once: a sweep over [received, completed] intervals."""
    edges: list[tuple[float, int]] = []
    for event in events:
        start = _timestamp(event["requestReceivedTimestamp"])
        end = _timestamp(event["stageTimestamp"])
        edges += [(start, 1), (end, -1)]
    edges.sort(key=lambda e: (e[0], e[1]))  # a request ending as another starts: no overlap
    current = peak = 0
    for _, delta in edges:
        current += delta
        peak = max(peak, current)
    return peak


def _high_water_kib(pid: int) -> int:
    """VmHWM of a live process (KiB), 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _wait_measuring_peak(pid: int) -> tuple[int, int]:
    """Wait for ``pid``; return its wait status and its peak RSS in KiB.

    Not ``ru_maxrss`` from wait4: a forked child keeps the high-water mark of the memory it
    shared with this process before exec (Linux records the old mm's peak on exec), so it
    reports this benchmark's own size, which grows as it reads the audit log. VmHWM belongs
    to the exec'd process alone; it only grows, so the last reading before exit is the peak
    (polled every 20 ms).
    """
    peak = 0
    while True:
        done, status, _ = os.wait4(pid, os.WNOHANG)
        if done:
            return status, peak
        peak = max(peak, _high_water_kib(pid))
        time.sleep(0.02)


def run_scenario(
    plane: ControlPlane,
    name: str,
    kubeconfig: Path,
    identity: str,
    extra: list[str],
    contexts: int,
    max_inflight: int,
    workdir: Path,
) -> Result:
    report = workdir / f"{name.replace('/', '_')}.json"
    cmd = [
        sys.executable,
        "-m",
        "skycheck",
        "--kubeconfig",
        str(kubeconfig),
        "--all-contexts",
        "--all-features",
        "--max-inflight",
        str(max_inflight),
        "--timeout",
        "600",
        "-o",
        "json",
        "--output-file",
        str(report),
        "--no-sky-config",
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    start_mark = plane.audit_mark()
    started = time.perf_counter()
    child = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    status, peak_kib = _wait_measuring_peak(child.pid)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if child.stderr:
        child.stderr.close()
    end_mark = plane.audit_mark()
    if child.returncode not in (0, 1, 3):
        raise SystemExit(f"{name}: exit {child.returncode}: {stderr[-800:]}")
    events = [
        e
        for e in events_between(plane, start_mark, end_mark)
        if e.get("user", {}).get("username") == identity and e.get("stage") == "ResponseComplete"
    ]
    doc = json.loads(report.read_text())
    checks = sum(len(r["checks"]) for r in doc.get("reports", [doc]))
    return Result(
        scenario=name,
        contexts=contexts,
        checks=checks,
        requests=len(events),
        wall_s=round(wall, 2),
        requests_per_s=round(len(events) / wall, 1) if wall else 0.0,
        peak_rss_mib=round(peak_kib / 1024, 1),
        max_inflight=max_overlap(events),
        exit_code=child.returncode,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="5 contexts, two identities (CI)")
    parser.add_argument("--contexts", type=int, default=None, help="contexts (default 50)")
    parser.add_argument("--max-inflight", type=int, default=16, help="skycheck --max-inflight")
    parser.add_argument("--cluster-dir", help="a running `python -m tests.cluster up --audit` dir")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    contexts = args.contexts or (5 if args.smoke else 50)

    results: list[Result] = []
    with control_plane(args.cluster_dir) as plane, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        admin_token, sa_token = prepare(plane)
        sa_user = f"system:serviceaccount:{NAMESPACE}:sky-sa"
        admin_user = f"system:serviceaccount:{NAMESPACE}:load-admin"
        admin = write_kubeconfig(plane, workdir / "admin.kubeconfig", admin_token, contexts)
        sa = write_kubeconfig(plane, workdir / "sa.kubeconfig", sa_token, contexts)
        bob = write_kubeconfig(plane, workdir / "bob.kubeconfig", plane.user_token("bob"), contexts)
        scenarios = [
            ("admin/SSAR", admin, admin_user, []),
            ("admin->sa/SAR", admin, admin_user, ["--sa", "sky-sa", "-n", NAMESPACE]),
        ]
        if not args.smoke:
            scenarios += [
                ("sa/SSAR", sa, sa_user, []),
                ("ns-admin->sa/fallback", bob, "bob", ["--sa", "sky-sa", "-n", NAMESPACE]),
            ]
        try:
            for name, kubeconfig, identity, extra in scenarios:
                print(f"running {name} over {contexts} contexts...", file=sys.stderr)
                results.append(
                    run_scenario(
                        plane,
                        name,
                        kubeconfig,
                        identity,
                        extra,
                        contexts,
                        args.max_inflight,
                        workdir,
                    )
                )
        finally:
            cleanup(plane)

    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return 0
    header = (
        "scenario",
        "ctx",
        "checks",
        "requests",
        "wall s",
        "req/s",
        "RSS MiB",
        "inflight",
        "exit",
    )
    rows = [
        (
            r.scenario,
            r.contexts,
            r.checks,
            r.requests,
            f"{r.wall_s:.2f}",
            f"{r.requests_per_s:.0f}",
            f"{r.peak_rss_mib:.0f}",
            r.max_inflight,
            r.exit_code,
        )
        for r in results
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))
    print(f"(--max-inflight {args.max_inflight}: bound on requests in flight per API server)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

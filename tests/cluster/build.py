"""Build (once) and cache the control-plane binaries the integration tests run.

Layout under the cache dir (``$SKYCHECK_CACHE`` or ``~/.cache/skycheck``)::

    bin/k8s-v1.37.2/{kube-apiserver,kubectl,kube-controller-manager}
    bin/etcd-v3.6.16/etcd
    bin/kube-scheduler-v1.37.2/kube-scheduler      (SkyPilot lab only: ensure_lab_binaries)
    bin/kwok-v0.8.0/{kwok,stages.yaml}             (SkyPilot lab only)

The lab's binaries get their own entries instead of joining ``k8s-v1.37.2``: adding a command
there would make every worktree sharing the cache rebuild and re-install that entry while other
test runs execute from it.

Versions come from the wrapper modules' go.mod files in ``tests/cluster/go/`` so that bumping a
version is a one-file change (plus ``go/update_gomod.py`` for Kubernetes). Every build writes
into ``<final>.partial`` and is renamed into place only when all binaries exist and answer
``--version``: an interrupted build can never leave a cache entry that looks complete. The Go
build cache (``go env GOCACHE``) is deliberately left alone, so a rebuild after a cache wipe of
our binaries only relinks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

GO_DIR = Path(__file__).resolve().parent / "go"
K8S_MODULE_DIR = GO_DIR / "kubernetes"
ETCD_MODULE_DIR = GO_DIR / "etcd"
KWOK_MODULE_DIR = GO_DIR / "kwok"

K8S_MODULE = "k8s.io/kubernetes"
ETCD_MODULE = "go.etcd.io/etcd/server/v3"
K8S_COMMANDS = ("kube-apiserver", "kubectl", "kube-controller-manager")
KWOK_MODULE = "sigs.k8s.io/kwok"
SCHEDULER_COMMAND = "kube-scheduler"
# Standalone kwok ships no default stages; these files of its module make nodes Ready (and keep
# them so) and move pods to Running / delete them. Relative to the module root.
KWOK_STAGE_FILES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat/node-heartbeat.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)

# Measured on the 2-core CI-sized machine with an empty Go build cache (k8s: 6m40s; etcd: 83s
# alone, ~30s after the k8s build since they share grpc/otel/protobuf). Only used for the
# progress message, so someone watching a silent `go build` knows whether to wait or worry.
K8S_COLD_BUILD_MINUTES = 7
ETCD_COLD_BUILD_MINUTES = 2
SCHEDULER_COLD_BUILD_MINUTES = 2
KWOK_COLD_BUILD_MINUTES = 3
# Long silent builds get killed by CI "no output" watchdogs; print a heartbeat this often.
HEARTBEAT_SECONDS = 60.0


class BuildError(RuntimeError):
    """A binary could not be built or a cached one is unusable."""


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of the cached control-plane executables."""

    kube_apiserver: Path
    kubectl: Path
    kube_controller_manager: Path
    etcd: Path
    k8s_version: str
    etcd_version: str


def cache_dir() -> Path:
    """Root of skycheck's test cache (``$SKYCHECK_CACHE`` or ``~/.cache/skycheck``)."""
    env = os.environ.get("SKYCHECK_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "skycheck"


def module_version(gomod: Path, module: str) -> str:
    """Return the version ``gomod`` requires for ``module`` (single-line or block ``require``)."""
    text = gomod.read_text(encoding="utf-8")
    # Matches both `require k8s.io/kubernetes v1.37.2` and a line inside `require ( ... )`.
    pattern = re.compile(
        r"^\s*(?:require\s+)?" + re.escape(module) + r"\s+(v\S+)(?:\s*//.*)?$", re.MULTILINE
    )
    for match in pattern.finditer(text):
        # Skip replace lines (`k8s.io/x => k8s.io/x v0.37.2`): they contain "=>" before us.
        line = text[text.rfind("\n", 0, match.start()) + 1 : match.end()]
        if "=>" not in line:
            return match.group(1)
    raise BuildError(f"{gomod}: no `require {module} <version>` line")


def k8s_version() -> str:
    """Kubernetes version pinned by ``go/kubernetes/go.mod``."""
    return module_version(K8S_MODULE_DIR / "go.mod", K8S_MODULE)


def etcd_version() -> str:
    """etcd server version pinned by ``go/etcd/go.mod``."""
    return module_version(ETCD_MODULE_DIR / "go.mod", ETCD_MODULE)


def k8s_bin_dir(root: Path | None = None) -> Path:
    """Final cache directory of the Kubernetes binaries."""
    return (root or cache_dir()) / "bin" / f"k8s-{k8s_version()}"


def etcd_bin_dir(root: Path | None = None) -> Path:
    """Final cache directory of the etcd binary."""
    return (root or cache_dir()) / "bin" / f"etcd-{etcd_version()}"


def cached_binaries(root: Path | None = None) -> Binaries | None:
    """The cached binaries if every one of them is present, else ``None`` (no build)."""
    k8s, etcd = k8s_bin_dir(root), etcd_bin_dir(root)
    paths = [k8s / c for c in K8S_COMMANDS] + [etcd / "etcd"]
    if not all(p.is_file() and os.access(p, os.X_OK) for p in paths):
        return None
    return Binaries(
        kube_apiserver=k8s / "kube-apiserver",
        kubectl=k8s / "kubectl",
        kube_controller_manager=k8s / "kube-controller-manager",
        etcd=etcd / "etcd",
        k8s_version=k8s_version(),
        etcd_version=etcd_version(),
    )


def ensure_binaries(log: TextIO | None = None) -> Binaries:
    """Return the cached binaries, building whatever is missing first.

    Safe to call from several processes at once (pytest-xdist, a shell running ``up``): builds
    are serialised by a lock file, and the loser of the race finds the cache filled.
    """
    out = log if log is not None else sys.stderr
    found = cached_binaries()
    if found is not None:
        return found
    root = cache_dir()
    (root / "bin").mkdir(parents=True, exist_ok=True)
    with _lock(root / "bin" / ".build.lock"):
        _ensure_k8s(root, out)
        _ensure_etcd(root, out)
    found = cached_binaries()
    if found is None:  # pragma: no cover - _ensure_* raise first
        raise BuildError("build finished but binaries are missing from the cache")
    return found


@dataclass(frozen=True)
class LabBinaries:
    """The SkyPilot lab's extra executables (tests/skypilot) on top of :class:`Binaries`."""

    base: Binaries
    kube_scheduler: Path
    kwok: Path
    kwok_stages: Path
    kwok_version: str


def kwok_version() -> str:
    """KWOK version pinned by ``go/kwok/go.mod``."""
    return module_version(KWOK_MODULE_DIR / "go.mod", KWOK_MODULE)


def scheduler_bin_dir(root: Path | None = None) -> Path:
    """Final cache directory of kube-scheduler (same Kubernetes version as the apiserver)."""
    return (root or cache_dir()) / "bin" / f"kube-scheduler-{k8s_version()}"


def kwok_bin_dir(root: Path | None = None) -> Path:
    """Final cache directory of kwok and its stage file."""
    return (root or cache_dir()) / "bin" / f"kwok-{kwok_version()}"


def cached_lab_binaries(root: Path | None = None) -> LabBinaries | None:
    """The cached lab binaries if all of them (and the base ones) are present, else ``None``."""
    base = cached_binaries(root)
    scheduler = scheduler_bin_dir(root) / SCHEDULER_COMMAND
    kwok_dir = kwok_bin_dir(root)
    if base is None or not all(
        p.is_file() for p in (scheduler, kwok_dir / "kwok", kwok_dir / "stages.yaml")
    ):
        return None
    return LabBinaries(
        base=base,
        kube_scheduler=scheduler,
        kwok=kwok_dir / "kwok",
        kwok_stages=kwok_dir / "stages.yaml",
        kwok_version=kwok_version(),
    )


def ensure_lab_binaries(log: TextIO | None = None) -> LabBinaries:
    """Like :func:`ensure_binaries`, plus kube-scheduler and kwok for the SkyPilot lab."""
    out = log if log is not None else sys.stderr
    found = cached_lab_binaries()
    if found is not None:
        return found
    ensure_binaries(out)
    root = cache_dir()
    with _lock(root / "bin" / ".build.lock"):
        _ensure_scheduler(root, out)
        _ensure_kwok(root, out)
    found = cached_lab_binaries()
    if found is None:  # pragma: no cover - _ensure_* raise first
        raise BuildError("build finished but lab binaries are missing from the cache")
    return found


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ensure_k8s(root: Path, out: TextIO) -> None:
    version = k8s_version()
    final = k8s_bin_dir(root)
    if all((final / c).is_file() for c in K8S_COMMANDS):
        return
    partial = final.with_name(final.name + ".partial")
    # A build started by hand (or by a process that does not take our lock) may still be
    # writing into .partial; wait for it instead of racing it on 2 cores.
    _wait_for_foreign_builds(partial, out)
    if _usable(partial, K8S_COMMANDS, version):
        print(f"using finished build in {partial}", file=out, flush=True)
    else:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        _go_build(
            K8S_MODULE_DIR,
            _k8s_ldflags(version),
            partial,
            [f"{K8S_MODULE}/cmd/{c}" for c in K8S_COMMANDS],
            label=f"{', '.join(K8S_COMMANDS)} {version}",
            minutes=K8S_COLD_BUILD_MINUTES,
            out=out,
        )
        if not _usable(partial, K8S_COMMANDS, version):
            raise BuildError(f"built Kubernetes binaries in {partial} do not report {version}")
    _install(partial, final)


def _ensure_etcd(root: Path, out: TextIO) -> None:
    version = etcd_version()
    final = etcd_bin_dir(root)
    if (final / "etcd").is_file():
        return
    partial = final.with_name(final.name + ".partial")
    _wait_for_foreign_builds(partial, out)
    if not _usable(partial, ("etcd",), version):
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        _go_build(
            ETCD_MODULE_DIR,
            "-s -w",
            partial,
            [ETCD_MODULE],
            label=f"etcd {version}",
            minutes=ETCD_COLD_BUILD_MINUTES,
            out=out,
        )
        # `go build -o dir/` names the binary after the import path: "server" (cmd/go skips
        # the /v3 major-version suffix; older Go releases used "v3"). We want "etcd".
        for name in ("v3", "server"):
            if (partial / name).is_file() and not (partial / "etcd").exists():
                (partial / name).rename(partial / "etcd")
        if not _usable(partial, ("etcd",), version):
            raise BuildError(f"built etcd in {partial} does not report {version}")
    _install(partial, final)


def _ensure_scheduler(root: Path, out: TextIO) -> None:
    version = k8s_version()
    final = scheduler_bin_dir(root)
    if (final / SCHEDULER_COMMAND).is_file():
        return
    partial = final.with_name(final.name + ".partial")
    _wait_for_foreign_builds(partial, out)
    if not _usable(partial, (SCHEDULER_COMMAND,), version):
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        _go_build(
            K8S_MODULE_DIR,
            _k8s_ldflags(version),
            partial,
            [f"{K8S_MODULE}/cmd/{SCHEDULER_COMMAND}"],
            label=f"{SCHEDULER_COMMAND} {version}",
            minutes=SCHEDULER_COLD_BUILD_MINUTES,
            out=out,
        )
        if not _usable(partial, (SCHEDULER_COMMAND,), version):
            raise BuildError(f"built {SCHEDULER_COMMAND} in {partial} does not report {version}")
    _install(partial, final)


def _ensure_kwok(root: Path, out: TextIO) -> None:
    version = kwok_version()
    final = kwok_bin_dir(root)
    if (final / "kwok").is_file() and (final / "stages.yaml").is_file():
        return
    partial = final.with_name(final.name + ".partial")
    _wait_for_foreign_builds(partial, out)
    if not _usable(partial, ("kwok",), version):
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        _go_build(
            KWOK_MODULE_DIR,
            # kwok's --version comes from pkg/consts (set in the module itself, no -X needed).
            "-s -w",
            partial,
            [f"{KWOK_MODULE}/cmd/kwok"],
            label=f"kwok {version}",
            minutes=KWOK_COLD_BUILD_MINUTES,
            out=out,
        )
        if not _usable(partial, ("kwok",), version):
            raise BuildError(f"built kwok in {partial} does not report {version}")
    (partial / "stages.yaml").write_text(_kwok_stages(version), encoding="utf-8")
    _install(partial, final)


def _kwok_stages(version: str) -> str:
    """The stage files of kwok's module, concatenated as one multi-document YAML file."""
    go = shutil.which("go")
    if go is None:
        raise BuildError("`go` is not on PATH; it is needed once to fetch kwok's stage files")
    env = dict(os.environ, GOFLAGS="-mod=readonly")
    result = subprocess.run(
        [go, "mod", "download", "-json", f"{KWOK_MODULE}@{version}"],
        cwd=KWOK_MODULE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(f"go mod download {KWOK_MODULE}@{version} failed: {result.stderr}")
    module_root = Path(json.loads(result.stdout)["Dir"])
    docs = [(module_root / name).read_text(encoding="utf-8").strip() for name in KWOK_STAGE_FILES]
    return "\n---\n".join(docs) + "\n"


def _k8s_ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    # Same stamping as upstream's hack/lib/version.sh, so `kubectl version` and the
    # apiserver's /version report the real version (and skew checks behave).
    return " ".join(
        [
            "-s -w",
            f"-X k8s.io/component-base/version.gitVersion={version}",
            f"-X k8s.io/component-base/version.gitMajor={major}",
            f"-X k8s.io/component-base/version.gitMinor={minor}",
            "-X k8s.io/component-base/version.gitTreeState=clean",
        ]
    )


def _install(partial: Path, final: Path) -> None:
    """Move a complete ``.partial`` dir into place with one atomic rename."""
    if final.exists():
        # Only reachable if someone hand-deleted a binary from a final dir.
        shutil.rmtree(final)
    partial.rename(final)


def _usable(directory: Path, commands: Sequence[str], version: str) -> bool:
    """True if every command exists there and prints ``version`` (catches truncated files)."""
    for command in commands:
        path = directory / command
        if not (path.is_file() and os.access(path, os.X_OK)):
            return False
        argv = (
            [str(path), "version", "--client"] if command == "kubectl" else [str(path), "--version"]
        )
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        # etcd prints "etcd Version: 3.6.16" (no leading v); Kubernetes prints "v1.37.2".
        if result.returncode != 0 or version.lstrip("v") not in result.stdout:
            return False
    return True


def _wait_for_foreign_builds(partial: Path, out: TextIO) -> None:
    needle = str(partial)
    announced = False
    while _processes_mentioning(needle):
        if not announced:
            print(f"waiting for a running build into {partial} ...", file=out, flush=True)
            announced = True
        time.sleep(5)


def _processes_mentioning(needle: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline and "go" in cmdline.split(" ", 1)[0]:
            pids.append(int(entry.name))
    return pids


def _go_build(
    module_dir: Path,
    ldflags: str,
    output: Path,
    packages: Sequence[str],
    *,
    label: str,
    minutes: int,
    out: TextIO,
) -> None:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "`go` is not on PATH; it is needed once to build the test control plane "
            f"(or populate {cache_dir()}/bin by hand)"
        )
    env = dict(os.environ)
    # Static binaries like upstream releases; also avoids needing a C toolchain.
    env["CGO_ENABLED"] = "0"
    # The wrapper go.mod/go.sum are committed; never let a build rewrite them.
    env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -mod=readonly -buildvcs=false").strip()
    argv = [go, "build", "-trimpath", "-ldflags", ldflags, "-o", f"{output}/", *packages]
    print(
        f"building {label} ... (cold build takes ~{minutes} min; with a warm Go build cache"
        " under a minute)",
        file=out,
        flush=True,
    )
    started = time.monotonic()
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(HEARTBEAT_SECONDS):
            elapsed = int(time.monotonic() - started)
            print(
                f"  still building {label} ({elapsed // 60}m{elapsed % 60:02d}s)",
                file=out,
                flush=True,
            )

    beat = threading.Thread(target=heartbeat, daemon=True)
    beat.start()
    try:
        result = subprocess.run(
            argv, cwd=module_dir, env=env, capture_output=True, text=True, check=False
        )
    finally:
        done.set()
        beat.join()
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise BuildError(
            f"go build of {label} failed after {elapsed:.0f}s (exit {result.returncode}):\n"
            f"{result.stderr[-4000:]}"
        )
    print(f"built {label} in {elapsed:.0f}s", file=out, flush=True)

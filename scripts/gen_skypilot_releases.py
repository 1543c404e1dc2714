#!/usr/bin/env python3
"""Record a digest of each SkyPilot release's Kubernetes-facing modules.

Writes rules/skypilot-releases.json: for every ``skypilot`` release PyPI serves from
0.10.0 to 0.14.1, and for the ``skypilot-nightly`` builds listed below (the proven
nightly and the newest one PyPI serves), a SHA-256 digest over the files through which
SkyPilot talks to Kubernetes. A release whose digest equals a proven release's digest
makes exactly the same Kubernetes calls, so skycheck decides it as that proven release
(skycheck/skypilot_version.py); any other release is not proven.

The Kubernetes-facing files of one wheel (``kubernetes_files``):

- every file under ``sky/provision/kubernetes/`` and ``sky/utils/kubernetes/`` (Python,
  and the manifests and scripts SkyPilot applies or runs from there);
- ``sky/adaptors/kubernetes.py`` (the client and the kubeconfig loading),
  ``sky/clouds/kubernetes.py`` (``remote_identity``, contexts, namespaces),
  ``sky/catalog/kubernetes_catalog.py`` (``show-gpus``: nodes and pods),
  ``sky/utils/kubernetes_enums.py``;
- ``sky/templates/kubernetes-*`` (the pod, service, ingress and RBAC bootstrap objects
  SkyPilot renders, and the port-forward proxy);
- any other Python module of the wheel whose code (comments and strings aside) calls the
  Kubernetes client itself (a ``kubernetes.<x>_api(`` call or a kubeconfig load), found by
  scanning each wheel: this catches ``sky/authentication.py`` in the 0.10 line, which
  keeps the SSH key in a Secret, and ``sky/server/metrics.py`` from 0.12.2.

Modules that only call into these (the API server, the CLI, the backends) are left out:
they decide when SkyPilot provisions, not what it asks of the Kubernetes API. The version
string (``sky/__init__.py``) is left out too.

    scripts/gen_skypilot_releases.py           # download what is missing, rewrite the file
    scripts/gen_skypilot_releases.py --check   # recompute from the cached wheels and compare

Wheels are cached under ~/.cache/skycheck/wheels (``pip download --no-deps``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import tokenize
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from skycheck.skypilot_version import version_key  # noqa: E402  (the order skycheck uses)

OUT = ROOT / "rules" / "skypilot-releases.json"
CACHE = Path.home() / ".cache" / "skycheck" / "wheels"

# Releases served by PyPI from OLDEST to NEWEST (inclusive) are recorded.
OLDEST, NEWEST = "0.10.0", "0.14.1"
# Nightly builds recorded: the proven one, the newest PyPI served when the file was made,
# and an older one (a nightly that is not the proven one's twin).
NIGHTLIES = ("1.0.0.dev20261001", "1.0.0.dev20261025", "1.0.0.dev20261027")

_TREES = ("sky/provision/kubernetes/", "sky/utils/kubernetes/")
_MODULES = (
    "sky/adaptors/kubernetes.py",
    "sky/clouds/kubernetes.py",
    "sky/catalog/kubernetes_catalog.py",
    "sky/utils/kubernetes_enums.py",
)
_TEMPLATES = "sky/templates/kubernetes-"
# A direct call of SkyPilot's Kubernetes client adaptor, or a kubeconfig load.
_CALLS = re.compile(
    rb"kubernetes\.[a-z_]+_api\(|load_kube_config|load_incluster_config|list_kube_config_contexts"
)


def served_releases() -> list[str]:
    """The ``skypilot`` releases PyPI serves from OLDEST to NEWEST, oldest first."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "skypilot"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("Available versions:"))
    versions = [v.strip() for v in line.split(":", 1)[1].split(",")]
    lo, hi = version_key(OLDEST), version_key(NEWEST)
    return sorted((v for v in versions if lo <= version_key(v) <= hi), key=version_key)


def wheel(package: str, version: str, *, download: bool) -> Path:
    """The cached wheel of ``package==version``, downloaded when missing and allowed."""
    name = package.replace("-", "_")
    path = CACHE / f"{name}-{version}-py3-none-any.whl"
    if not path.exists():
        if not download:
            raise SystemExit(f"{path}: not cached (run without --check to download)")
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary",
             ":all:", "-d", str(CACHE), f"{package}=={version}"],
            check=True,
        )  # fmt: skip
    return path


def calls_kubernetes(source: bytes) -> bool:
    """Whether Python source calls the Kubernetes client (comments and strings aside)."""
    if not _CALLS.search(source):
        return False  # most modules: no need to tokenize
    try:
        code = b" ".join(
            t.string.encode()
            for t in tokenize.tokenize(io.BytesIO(source).readline)
            if t.type not in (tokenize.COMMENT, tokenize.STRING, tokenize.ENCODING)
        )
    except (tokenize.TokenError, SyntaxError):
        code = source  # unreadable: judge the raw text, which errs towards including it
    return bool(_CALLS.search(code.replace(b" . ", b".").replace(b" (", b"(")))


def kubernetes_files(zf: zipfile.ZipFile) -> dict[str, bytes]:
    """The wheel's Kubernetes-facing files (see the module docstring), by path."""
    out: dict[str, bytes] = {}
    for name in zf.namelist():
        if name.endswith("/") or "__pycache__" in name:
            continue
        picked = name.startswith(_TREES) or name in _MODULES or name.startswith(_TEMPLATES)
        data = zf.read(name) if picked or name.endswith(".py") else b""
        if picked or (name.startswith("sky/") and name.endswith(".py") and calls_kubernetes(data)):
            out[name] = data
    return out


def digest(files: dict[str, bytes]) -> str:
    """SHA-256 over the sorted (path, SHA-256 of content) lines."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{name}\0{hashlib.sha256(files[name]).hexdigest()}\n".encode())
    return "sha256:" + h.hexdigest()


def record(package: str, version: str, *, download: bool) -> dict[str, object]:
    with zipfile.ZipFile(wheel(package, version, download=download)) as zf:
        files = kubernetes_files(zf)
    return {"version": version, "package": package, "digest": digest(files), "files": len(files)}


def build(releases: list[str], *, download: bool) -> dict[str, object]:
    entries = [record("skypilot", v, download=download) for v in releases]
    entries += [record("skypilot-nightly", v, download=download) for v in NIGHTLIES]
    return {
        "description": (
            "SHA-256 of each SkyPilot release's Kubernetes-facing files "
            "(scripts/gen_skypilot_releases.py says which). Equal digests: the same "
            "Kubernetes calls, decided as the proven release with that digest."
        ),
        "releases": entries,
    }


def render(doc: dict[str, object]) -> str:
    """One release per line: small, and a diff shows what changed."""
    lines = [f'  "description": {json.dumps(doc["description"])},', '  "releases": [']
    entries = doc["releases"]
    assert isinstance(entries, list)
    lines += [
        f"    {json.dumps(e)}{',' if i < len(entries) - 1 else ''}" for i, e in enumerate(entries)
    ]
    return "{\n" + "\n".join(lines) + "\n  ]\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the cached wheels")
    args = parser.parse_args(argv)
    if args.check:
        current = json.loads(OUT.read_text(encoding="utf-8"))
        releases = [e["version"] for e in current["releases"] if e["package"] == "skypilot"]
        if render(build(releases, download=False)) != OUT.read_text(encoding="utf-8"):
            print(f"{OUT.relative_to(ROOT)} is stale: run scripts/gen_skypilot_releases.py")
            return 1
        return 0
    OUT.write_text(render(build(served_releases(), download=True)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

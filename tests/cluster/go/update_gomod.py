"""Regenerate the Kubernetes wrapper module's ``replace`` lines, then ``go mod tidy``.

Usage: ``python tests/cluster/go/update_gomod.py [v1.37.2]`` (default: the version go.mod
already requires).

Why: ``k8s.io/kubernetes`` requires its staging modules (k8s.io/api, k8s.io/client-go, ...) at
``v0.0.0`` and replaces them with ``./staging/src/k8s.io/X``, paths that do not exist in the
module zip. A consumer must pin each one to the matching published ``v0.<minor>.<patch>``. The
list changes between releases, so it is read from the downloaded go.mod of the exact release
instead of being hard-coded. Never ``go get -u`` here: it would drift the pins.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOMOD = HERE / "kubernetes" / "go.mod"
MODULE = "k8s.io/kubernetes"
STAGING_RE = re.compile(r"^\s*(?:replace\s+)?(\S+)\s+=>\s+\./staging/", re.MULTILINE)
REPLACE_BLOCK_RE = re.compile(r"^replace\s*\(\n.*?^\)\n?", re.MULTILINE | re.DOTALL)
REPLACE_LINE_RE = re.compile(r"^replace\s+k8s\.io/\S+\s+=>.*\n?", re.MULTILINE)
REQUIRE_RE = re.compile(r"^(\s*(?:require\s+)?" + re.escape(MODULE) + r"\s+)(v\S+)", re.MULTILINE)


def current_version(text: str) -> str:
    """The k8s.io/kubernetes version the wrapper go.mod requires now."""
    match = REQUIRE_RE.search(text)
    if match is None:
        sys.exit(f"{GOMOD}: no `require {MODULE} <version>` line")
    return match.group(2)


def staging_modules(version: str) -> list[str]:
    """Module paths that k8s.io/kubernetes@version replaces with a ./staging directory."""
    # Run outside any module so the download cannot touch our go.mod/go.sum.
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            ["go", "mod", "download", "-json", f"{MODULE}@{version}"],
            cwd=scratch,
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        sys.exit(f"go mod download {MODULE}@{version} failed:\n{result.stdout}{result.stderr}")
    info = json.loads(result.stdout)
    upstream = Path(info["GoMod"]).read_text(encoding="utf-8")
    return sorted(set(STAGING_RE.findall(upstream)))


def main(argv: list[str]) -> int:
    """Rewrite go.mod for the requested version and tidy it."""
    text = GOMOD.read_text(encoding="utf-8")
    version = argv[0] if argv else current_version(text)
    if not re.fullmatch(r"v1\.\d+\.\d+", version):
        sys.exit(f"expected a release version like v1.37.2, got {version!r}")
    # Staging modules are tagged v0.<minor>.<patch> for Kubernetes v1.<minor>.<patch>.
    staging_version = "v0." + version.split(".", 1)[1]
    modules = staging_modules(version)
    if not modules:
        sys.exit(f"{MODULE}@{version}: no `=> ./staging/` replace lines found")

    text = REQUIRE_RE.sub(lambda m: m.group(1) + version, text, count=1)
    text = REPLACE_BLOCK_RE.sub("", text)
    text = REPLACE_LINE_RE.sub("", text).rstrip("\n")
    block = "\n".join(f"\t{m} => {m} {staging_version}" for m in modules)
    GOMOD.write_text(f"{text}\n\nreplace (\n{block}\n)\n", encoding="utf-8")
    print(f"{GOMOD}: {len(modules)} staging replaces at {staging_version}", file=sys.stderr)

    tidy = subprocess.run(["go", "mod", "tidy"], cwd=GOMOD.parent, check=False)
    return tidy.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

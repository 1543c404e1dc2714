#!/usr/bin/env python3
"""Generate skycheck/data/bootstrap-rbac.json from a real kube-apiserver.

A fresh kube-apiserver creates its default ClusterRoles, Roles and bindings itself (the
``rbac/bootstrap-roles`` post-start hook). Offline mode needs the same objects so that
manifests binding ``edit``, ``view``, ``admin`` or ``cluster-admin`` (and the grants every
authenticated user has) evaluate as on a cluster. This script reads them with
``kubectl get -o json``, keeps only the objects labelled
``kubernetes.io/bootstrapping=rbac-defaults``, strips metadata noise and writes sorted JSON.

Usage (against the test control plane, see tests/cluster)::

    python scripts/gen_bootstrap_rbac.py --kubectl PATH --kubeconfig PATH

``--from-files`` builds the same output from saved ``kubectl get -o json``/YAML dumps (or the
upstream bootstrappolicy testdata); such output is marked ``"placeholder": true`` unless
``--not-placeholder`` says the dumps came from a live server.

The rules of aggregated ClusterRoles (admin, edit, view...) are written as null, as the
apiserver creates them: kube-controller-manager fills them, and skycheck recomputes that.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "skycheck" / "data" / "bootstrap-rbac.json"
BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")
KEEP_ANNOTATIONS = ("rbac.authorization.kubernetes.io/autoupdate",)
KIND_ORDER = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
NAMESPACED = ("Role", "RoleBinding")


def _kubectl(kubectl: str, kubeconfig: str | None, context: str | None, *args: str) -> Any:
    cmd = [kubectl]
    if kubeconfig:
        cmd += ["--kubeconfig", kubeconfig]
    if context:
        cmd += ["--context", context]
    cmd += list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(args)} failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def _flatten(doc: Any) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        return []
    if isinstance(doc.get("items"), list):
        out: list[dict[str, Any]] = []
        for item in doc["items"]:
            out += _flatten(item)
        return out
    return [doc]


def normalize(obj: dict[str, Any]) -> dict[str, Any]:
    """Keep what RBAC evaluation reads; drop uid, resourceVersion, managedFields..."""
    kind = obj["kind"]
    meta = obj.get("metadata") or {}
    out_meta: dict[str, Any] = {"name": meta["name"]}
    if kind in NAMESPACED:
        out_meta["namespace"] = meta["namespace"]
    if meta.get("labels"):
        out_meta["labels"] = dict(sorted(meta["labels"].items()))
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k in KEEP_ANNOTATIONS
    }
    if annotations:
        out_meta["annotations"] = annotations
    out: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": out_meta,
    }
    if kind in ("Role", "ClusterRole"):
        aggregation = obj.get("aggregationRule")
        if aggregation:
            out["aggregationRule"] = aggregation
            out["rules"] = None  # filled by kube-controller-manager; skycheck recomputes
        else:
            out["rules"] = obj.get("rules")
    else:
        out["roleRef"] = obj["roleRef"]
        out["subjects"] = obj.get("subjects")
    return out


def _sort_key(obj: dict[str, Any]) -> tuple[int, str, str]:
    meta = obj["metadata"]
    return (KIND_ORDER.index(obj["kind"]), meta.get("namespace", ""), meta["name"])


def build(
    items: list[dict[str, Any]], version: str, source: str, placeholder: bool
) -> dict[str, Any]:
    kept: list[dict[str, Any]] = []
    skipped = 0
    for obj in items:
        if obj.get("kind") not in KIND_ORDER:
            continue
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if labels.get(BOOTSTRAP_LABEL[0]) != BOOTSTRAP_LABEL[1]:
            skipped += 1
            continue
        kept.append(normalize(obj))
    if skipped:
        print(f"skipped {skipped} objects without {'='.join(BOOTSTRAP_LABEL)}", file=sys.stderr)
    kept.sort(key=_sort_key)
    keys = [_sort_key(o) for o in kept]
    if len(set(keys)) != len(keys):
        sys.exit("error: duplicate objects in the input")
    return {
        "kubernetesVersion": version,
        "source": source,
        "placeholder": placeholder,
        "items": kept,
    }


def _check(data: dict[str, Any]) -> None:
    """Every object must load in skycheck (same parser as --manifests)."""
    sys.path.insert(0, str(ROOT))
    from skycheck import rbac

    for item in data["items"]:
        rbac.parse_object(item)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubectl", default="kubectl")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--context")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--from-files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--version", help="Kubernetes version (with --from-files)")
    parser.add_argument("--source", help="where the data came from (with --from-files)")
    parser.add_argument("--not-placeholder", action="store_true")
    args = parser.parse_args(argv)

    if args.from_files:
        import yaml

        items: list[dict[str, Any]] = []
        for path in args.from_files:
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                items += _flatten(doc)
        if not args.version or not args.source:
            parser.error("--from-files needs --version and --source")
        data = build(items, args.version, args.source, placeholder=not args.not_placeholder)
    else:
        version_info = _kubectl(
            args.kubectl, args.kubeconfig, args.context, "version", "-o", "json"
        )
        version = version_info["serverVersion"]["gitVersion"]
        items = []
        for what in ("clusterroles,clusterrolebindings", "roles,rolebindings"):
            extra = ["-A"] if what.startswith("roles") else []
            items += _flatten(
                _kubectl(
                    args.kubectl, args.kubeconfig, args.context, "get", what, *extra, "-o", "json"
                )
            )
        source = (
            f"kubectl get against a live kube-apiserver {version} (scripts/gen_bootstrap_rbac.py)"
        )
        data = build(items, version, source, placeholder=False)

    _check(data)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(
        f"wrote {len(data['items'])} objects ({data['kubernetesVersion']}) to {args.output}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

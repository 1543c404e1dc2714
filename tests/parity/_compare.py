"""Resolve a corpus case with skycheck, run SkyPilot's driver, and compare the two."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from skycheck import kube, skyconfig, skyconfig_dialect
from skycheck.errors import ConfigError

DRIVER = Path(__file__).with_name("_skypilot_driver.py")
BATCH = 400  # SkyPilot's import takes seconds: one process for many cases

# Names skycheck rejects in the file (exit 2) while SkyPilot takes them as text and
# fails later, when the API server refuses a pod or service account with that name.
_INVALID_NAME = re.compile(
    r"'([^']*)' is (?:neither .* nor )?(?:not )?a valid (?:service account|namespace) name"
)


def private_mount_prefix() -> list[str]:
    """Run the driver in its own mount namespace over a tmpfs at /run, if this host allows.

    In-cluster cases write /var/run/secrets/..., where SkyPilot looks; the private
    tmpfs keeps that away from the host. Empty when unshare is not permitted.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    probe = subprocess.run(
        [unshare, "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs tmpfs /run"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        return []
    return [
        unshare,
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount -t tmpfs tmpfs /run && exec "$0" "$@"',
    ]


def run_skypilot(python: Path, cases: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """SkyPilot's answers for ``cases`` (and its version), in batches."""
    prefix = private_mount_prefix()
    args = ["--private-run"] if prefix else []
    answers: list[dict[str, Any]] = []
    version = ""
    for start in range(0, len(cases), BATCH):
        batch = cases[start : start + BATCH]
        with tempfile.TemporaryDirectory() as cwd:
            # Nothing of this process's environment (the suite points SKYPILOT_CONFIG
            # and KUBECONFIG at its own files): each case sets what it needs.
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": cwd, "LANG": "C.UTF-8"}
            proc = subprocess.run(
                [*prefix, str(python), str(DRIVER), *args],
                input=json.dumps(batch),
                capture_output=True,
                text=True,
                cwd=cwd,
                env=env,
                timeout=600,
                check=False,
            )
        if proc.returncode != 0:
            raise RuntimeError(f"SkyPilot driver failed: {proc.stderr[-2000:]}")
        out = json.loads(proc.stdout)
        version = out["version"]
        answers += out["answers"]
    return version, answers


def run_skycheck(case: dict[str, Any], version: str | None = None) -> dict[str, Any]:
    """skycheck's answer for one case, through the functions a live check uses, reading
    the config as SkyPilot ``version`` does (None: as 0.14.1 does)."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = {k: v.replace("$HOME", tmp) for k, v in (case.get("env") or {}).items()}
        for name, text in (case.get("files") or {}).items():
            (home / name).parent.mkdir(parents=True, exist_ok=True)
            (home / name).write_text(text)
        if case.get("config") is not None:
            (home / ".sky").mkdir()
            (home / ".sky" / "config.yaml").write_text(case["config"])
        path, variable = skyconfig.config_location(env)
        if variable is None:
            path = home / ".sky" / "config.yaml"
        dialect = skyconfig_dialect.for_version(version)
        try:
            sky = skyconfig.load_sky_config(path, missing_ok=variable is None)
            skyconfig.refuse_for_release(sky, dialect)
        except ConfigError as exc:
            return {"id": case["id"], "load": exc.one_line()}
        data = None
        if case.get("kubeconfig") is not None:
            kc = home / "kubeconfig"
            kc.write_text(json.dumps(case["kubeconfig"]))
            data = kube.read_kubeconfig(str(kc)).data
        ic = case.get("in_cluster")
        view = skyconfig.kube_view(
            data,
            in_cluster=ic is not None,
            in_cluster_namespace=(ic or {}).get("namespace"),
            env=env,
        )
        selection, setups = skyconfig.resolve(sky, view, dialect)
        contexts: dict[str, Any] = {}
        for setup in setups:
            if setup.derivation is None:
                assert setup.error is not None
                contexts[setup.context] = {
                    "error": setup.error.where,
                    "message": setup.error.one_line(),
                }
            else:
                d = setup.derivation
                contexts[setup.context] = {
                    "namespace": d.namespace,
                    "identity": d.service_account,
                    "ports": d.port_mode,
                }
        spec = skyconfig.high_availability_specified(sky, dialect)
        return {
            "id": case["id"],
            "allowed": list(selection.contexts),
            "contexts": contexts,
            "ha": {"jobs": "jobs" in spec, "serve": "serve" in spec},
        }


def _is_error(value: Any) -> bool:
    return isinstance(value, dict) and "error" in value


def compare(
    case: dict[str, Any], sky: dict[str, Any], ours: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """(disagreements, deliberate differences) between SkyPilot's answer and skycheck's."""
    bad: list[str] = []
    deliberate: list[str] = []
    cid = case["id"]
    if "load" in sky:
        if "load" not in ours:
            bad.append(
                f"{cid}: SkyPilot rejects the file ({sky['load']['message'][:160]}); "
                "skycheck accepts it"
            )
        return bad, deliberate
    none_keyword = [c for c, v in sky["contexts"].items() if v.get("identity_none")]
    if "load" in ours:
        m = _INVALID_NAME.search(ours["load"])
        if none_keyword and m and m.group(1).upper() == "NONE":
            deliberate.append(f"{cid}: nightly-none: {ours['load']}")
            return bad, deliberate
        if m and m.group(1) in (case.get("config") or ""):
            deliberate.append(f"{cid}: invalid-name: {ours['load']}")
        elif "must not be empty" in ours["load"] and all(
            _is_error(c["identity"]) for c in sky["contexts"].values()
        ):
            deliberate.append(f"{cid}: empty-map: {ours['load']}")
        else:
            bad.append(f"{cid}: skycheck rejects the file ({ours['load']}); SkyPilot accepts it")
        return bad, deliberate
    if set(sky["allowed"]) != set(ours["allowed"]):
        bad.append(
            f"{cid}: allowed contexts: SkyPilot {sky['allowed']}, skycheck {ours['allowed']}"
        )
    if sky["ha"] != ours["ha"]:
        bad.append(f"{cid}: high availability: SkyPilot {sky['ha']}, skycheck {ours['ha']}")
    for ctx, theirs in sky["contexts"].items():
        mine = ours["contexts"].get(ctx)
        if mine is None:
            continue  # already reported as an allowed-contexts difference
        if "error" in mine:
            kind = "remote_identity" if "remote_identity" in mine["error"] else "ports"
            key = "identity" if kind == "remote_identity" else "ports"
            if not _is_error(theirs[key]):
                bad.append(
                    f"{cid}/{ctx}: skycheck fails on {kind} ({mine['message']}); "
                    f"SkyPilot: {theirs[key]}"
                )
            continue
        if theirs.get("identity_none") and mine["identity"].upper() == "NONE":
            # A nightly's keyword; skycheck follows 0.14.1, where it names an account.
            deliberate.append(f"{cid}/{ctx}: nightly-none: skycheck {mine['identity']!r}")
            theirs = {**theirs, "identity": mine["identity"]}
        for key in ("namespace", "identity", "ports"):
            if _is_error(theirs[key]):
                bad.append(
                    f"{cid}/{ctx}: SkyPilot fails on {key} "
                    f"({theirs[key]['message'][:160]}); skycheck: {mine[key]}"
                )
            elif theirs[key] != mine[key]:
                bad.append(f"{cid}/{ctx}: {key}: SkyPilot {theirs[key]!r}, skycheck {mine[key]!r}")
    return bad, deliberate

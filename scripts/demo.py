"""The README's first command (`make demo`): skycheck's main job, end to end.

1. The offline check first, from the manifest alone: the SkyPilot docs' example service
   account with one realistic mistake (the docs' short skypilot-system snippet, which
   grants nothing). It needs no cluster, so the answer is on screen within seconds.
2. Start a local Kubernetes control plane (built from Go modules on first use: minutes).
3. Apply the same manifest; `skycheck --sa sky-sa -n default --all-features --fix fix.yaml`.
4. Apply the fix as admin, check again: green.
5. Stop the control plane (always, also on failure or Ctrl-C).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".skycheck-demo"
BIN = Path(sys.executable).parent
SKYCHECK = str(BIN / "skycheck")

GOOD_SNIPPET = """
  - apiGroups: [ "apps" ]
    resources: [ "daemonsets" ]
    verbs: [ "*" ]
"""
DOCS_SHORT_SNIPPET = """
  - apiGroups: [ "*" ]
    resources: [ "apps" ]
    verbs: [ "daemonsets" ]
"""


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def show(cmd: list[str], *, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> int:
    """Run a command as a user would, echoing it first; return its exit code."""
    shown = " ".join(shlex.quote(c if c != SKYCHECK else "skycheck") for c in cmd)
    print(f"$ {shown}", flush=True)
    code = subprocess.run(cmd, env=env, check=False).returncode
    print(f"(exit {code})", flush=True)
    if code not in ok:
        raise SystemExit(f"demo: unexpected exit {code} from: {shown}")
    return code


def main() -> int:
    WORK.mkdir(exist_ok=True)
    # The broken manifest: the docs' create-sky-sa.yaml with the docs' short snippet.
    docs = (ROOT / "tests" / "manifests" / "create-sky-sa.yaml").read_text()
    assert GOOD_SNIPPET in docs
    broken = WORK / "create-sky-sa.yaml"
    broken.write_text(docs.replace(GOOD_SNIPPET, DOCS_SHORT_SNIPPET))
    # The answer first: offline needs no cluster, so a newcomer sees the finding in seconds
    # rather than after the first build of the control plane.
    say(
        "the docs' create-sky-sa.yaml with the docs' short skypilot-system snippet (a "
        "realistic mistake: it grants nothing), checked offline from the manifest alone"
    )
    show(
        [
            SKYCHECK,
            "--manifests",
            str(broken),
            "--sa",
            "sky-sa",
            "-n",
            "default",
            "-f",
            "object-store-mounting",
        ],
        env=dict(os.environ),
        ok=(1,),
    )
    cluster_dir = WORK / "cluster"
    say("starting a local kube-apiserver with RBAC (first run builds it: ~10 min)")
    up = subprocess.run(
        [sys.executable, "-m", "tests.cluster", "up", "--dir", str(cluster_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if up.returncode != 0:
        return up.returncode
    info = json.loads(up.stdout.strip().splitlines()[-1])
    env = {
        **os.environ,
        "KUBECONFIG": info["kubeconfig"],
        "PATH": f"{Path(info['kubectl']).parent}{os.pathsep}{BIN}{os.pathsep}"
        f"{os.environ.get('PATH', '')}",
    }
    kubectl = info["kubectl"]
    try:
        say("the live part: applying the same manifest to the local cluster")
        show([kubectl, "create", "namespace", "ingress-nginx"], env=env, ok=(0, 1))
        show([kubectl, "apply", "-f", str(broken)], env=env)

        say("may sky-sa run SkyPilot here, with every feature?")
        fix = WORK / "fix.yaml"
        show(
            [SKYCHECK, "--sa", "sky-sa", "-n", "default", "--all-features", "--fix", str(fix)],
            env=env,
            ok=(1,),
        )

        say(f"the fix skycheck wrote ({fix.relative_to(ROOT)})")
        print(fix.read_text(), flush=True)

        say("applying the fix as admin, then checking again")
        show([kubectl, "auth", "reconcile", "-f", str(fix)], env=env)
        code = 1
        for attempt in range(8):  # RBAC caches catch up within moments
            code = subprocess.run(
                [SKYCHECK, "--sa", "sky-sa", "-n", "default", "--all-features", "-o", "json"],
                env=env,
                capture_output=True,
                check=False,
            ).returncode
            if code == 0:
                break
            time.sleep(0.25 * (attempt + 1))
        show([SKYCHECK, "--sa", "sky-sa", "-n", "default", "--all-features"], env=env)

        say("demo done: the broken setup was caught, fixed and re-checked green")
        return 0
    finally:
        say("stopping the local control plane")
        subprocess.run(
            [sys.executable, "-m", "tests.cluster", "down", "--dir", str(cluster_dir)],
            cwd=ROOT,
            check=False,
        )


if __name__ == "__main__":
    sys.exit(main())

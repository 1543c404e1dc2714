"""Resolve SkyPilot setups with SkyPilot's own functions (runs under a SkyPilot venv's python).

Reads a JSON list of cases on stdin and prints one JSON list of answers. Each case
names a config file text, a kubeconfig, environment variables and optionally an
in-cluster service account; the driver lays them out in a fresh HOME and asks
SkyPilot, with nothing of SkyPilot's replaced:

- allowed contexts: ``Kubernetes.existing_allowed_contexts`` (sky/clouds/kubernetes.py);
- namespace per context: ``kubernetes_utils.get_namespace`` (sky/provision/kubernetes/utils.py);
- identity per context: the remote_identity block of
  ``Kubernetes.make_deploy_resources_variables``, taken from SkyPilot's source at run
  time (the whole method needs a reachable cluster; this block does not);
- ports per context: ``network_utils.get_port_mode(None, context)``;
- high availability: ``controller_utils.high_availability_specified`` per controller.

In-cluster cases write ``/var/run/secrets/kubernetes.io/serviceaccount/`` (the path
SkyPilot reads), so they run only with ``--private-run``: the test starts the driver
in its own mount namespace over a private tmpfs at /run, never touching the host's.
Standard library only, so it runs in any SkyPilot venv.
"""

import contextlib
import inspect
import io
import json
import os
import shutil
import sys
import tempfile
import textwrap
import types

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# Every variable a case may set; all are cleared before each case.
CASE_ENV = (
    "SKYPILOT_CONFIG",
    "SKYPILOT_GLOBAL_CONFIG",
    "SKYPILOT_PROJECT_CONFIG",
    "SKYPILOT_ALLOW_ALL_KUBERNETES_CONTEXTS",
    "SKYPILOT_ALL_KUBERNETES_CONTEXTS_INCLUDES_IN_CLUSTER",
    "SKYPILOT_IN_CLUSTER_NAMESPACE",
    "SKYPILOT_IN_CLUSTER_CONTEXT_NAME",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    "KUBECONFIG",
)


def _identity_block():
    """SkyPilot's remote_identity resolution, cut from its own source.

    Everything in make_deploy_resources_variables from ``remote_identity = ...``
    up to ``fuse_device_required = ...``: the config lookup, the per-context
    match and the mapping of keywords to accounts, in whatever form the
    installed version has them. It runs in the module's globals with the few
    locals it reads (a user cluster, no task overrides).
    """
    from sky.clouds import kubernetes as k8s_cloud

    src = textwrap.dedent(inspect.getsource(k8s_cloud.Kubernetes.make_deploy_resources_variables))
    lines = src.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("remote_identity = "))
    end = next(
        i
        for i, line in enumerate(lines)
        if i > start and line.strip().startswith("fuse_device_required")
    )
    block = textwrap.dedent("\n".join(lines[start:end]))
    code = compile(block, "<sky make_deploy_resources_variables: remote_identity>", "exec")
    return code, k8s_cloud


def _layout(case, home):
    """Write the case's files and environment; return the cwd to run in."""
    for var in CASE_ENV:
        os.environ.pop(var, None)
    os.environ["HOME"] = home
    sky_dir = os.path.join(home, ".sky")
    os.makedirs(sky_dir, exist_ok=True)
    if case.get("config") is not None:
        with open(os.path.join(sky_dir, "config.yaml"), "w") as f:
            f.write(case["config"])
    for name, text in (case.get("files") or {}).items():
        path = os.path.join(home, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    if case.get("kubeconfig") is not None:
        path = os.path.join(home, ".kube", "config")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(case["kubeconfig"], f)
    for key, value in (case.get("env") or {}).items():
        os.environ[key] = value.replace("$HOME", home)
    if os.path.isdir(SA_DIR):
        shutil.rmtree(SA_DIR)
    ic = case.get("in_cluster")
    if ic is not None:
        os.makedirs(SA_DIR)
        with open(os.path.join(SA_DIR, "token"), "w") as f:
            f.write("not-a-real-token")
        if ic.get("namespace") is not None:
            with open(os.path.join(SA_DIR, "namespace"), "w") as f:
                f.write(ic["namespace"])
    cwd = os.path.join(home, "cwd")
    os.makedirs(cwd, exist_ok=True)
    return cwd


def _error(exc):
    text = " ".join(str(exc).split())
    return {"error": type(exc).__name__, "message": text[:400]}


def resolve(case, block, k8s_cloud):
    from sky import skypilot_config
    from sky.adaptors import kubernetes as k8s_adaptor
    from sky.provision.kubernetes import network_utils
    from sky.provision.kubernetes import utils as kubernetes_utils
    from sky.utils import annotations, controller_utils

    annotations.clear_request_level_cache()
    out = {"id": case["id"]}
    try:
        skypilot_config.reload_config()
    except Exception as exc:  # SkyPilot's own rejection of the file
        out["load"] = _error(exc)
        return out
    if case.get("jobs_consolidation_signal"):
        # What setup_consolidation_mode_on_startup writes when the API server starts.
        from sky.jobs import constants as jobs_constants

        # Releases before the signal file (0.10) read the config anew: nothing to write.
        sig_file = getattr(jobs_constants, "JOBS_CONSOLIDATION_RELOADED_SIGNAL_FILE", None)
        if sig_file:
            sig = os.path.expanduser(sig_file)
            os.makedirs(os.path.dirname(sig), exist_ok=True)
            open(sig, "w").close()
    annotations.clear_request_level_cache()
    try:
        allowed = k8s_cloud.Kubernetes.existing_allowed_contexts(silent=True)
    except Exception as exc:
        out["allowed"] = _error(exc)
        allowed = []
    else:
        out["allowed"] = list(allowed)
    contexts = {}
    # Releases before 0.13 name it get_kube_config_context_namespace.
    get_namespace = getattr(kubernetes_utils, "get_namespace", None) or (
        lambda context: kubernetes_utils.get_kube_config_context_namespace(context)
    )
    for ctx in allowed:
        entry = {}
        try:
            entry["namespace"] = get_namespace(context=ctx)
        except Exception as exc:
            entry["namespace"] = _error(exc)
        scope = {
            "self": k8s_cloud.Kubernetes(),
            "context": ctx,
            "resources": types.SimpleNamespace(
                cluster_config_overrides={}, kubernetes_identity=None
            ),
            "cluster_name": types.SimpleNamespace(
                display_name="sky-parity", name_on_cloud="sky-parity"
            ),
        }
        try:
            exec(block, vars(k8s_cloud).copy(), scope)
            entry["identity"] = scope["k8s_service_account_name"]
            # Nightlies: remote_identity NONE runs pods as SkyPilot's account with no token.
            entry["identity_none"] = bool(scope.get("identity_none", False))
        except Exception as exc:
            entry["identity"] = _error(exc)
        try:
            entry["ports"] = network_utils.get_port_mode(None, ctx).value
        except Exception as exc:
            entry["ports"] = _error(exc)
        contexts[ctx] = entry
    out["contexts"] = contexts
    ha = {}
    for key, controller in (
        ("jobs", controller_utils.Controllers.JOBS_CONTROLLER),
        ("serve", controller_utils.Controllers.SKY_SERVE_CONTROLLER),
    ):
        try:
            ha[key] = controller_utils.high_availability_specified(controller.value.cluster_name)
        except Exception as exc:
            ha[key] = _error(exc)
    out["ha"] = ha
    del k8s_adaptor
    return out


def main():
    private_run = "--private-run" in sys.argv
    cases = json.load(sys.stdin)
    real_stdout = sys.stdout
    answers = []
    # SkyPilot logs to stdout/stderr; keep stdout for the JSON answer.
    with contextlib.redirect_stdout(io.StringIO()):
        import sky  # noqa: F401  (slow: once per batch)
        from sky import __version__ as version

        block, k8s_cloud = _identity_block()
        for case in cases:
            if case.get("in_cluster") is not None and not private_run:
                answers.append({"id": case["id"], "skipped": "in-cluster needs --private-run"})
                continue
            home = tempfile.mkdtemp(prefix="skyparity-")
            try:
                os.chdir(_layout(case, home))
                answers.append(resolve(case, block, k8s_cloud))
            finally:
                os.chdir("/")
                shutil.rmtree(home, ignore_errors=True)
    json.dump({"version": version, "answers": answers}, real_stdout)


if __name__ == "__main__":
    main()

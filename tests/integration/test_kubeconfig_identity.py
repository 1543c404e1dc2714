"""The identity checked is the one kubectl acts as, against the real apiserver.

Impersonation in the kubeconfig user (``as``, ``as-groups``), anonymous users, impersonation
with only the right to impersonate users, and paths relative to the kubeconfig file. Each
answer is compared with what the real server says to kubectl (the cached build) or to a real
request made as that identity.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from skycheck import identity
from tests.integration.test_transports import _client_cert
from tests.reliability._util import invoke

pytestmark = pytest.mark.cluster

BIND = """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: {name}, namespace: {ns}}}
subjects: [{{kind: {kind}, name: "{subject}", apiGroup: rbac.authorization.k8s.io}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}
"""

IMPERSONATE_USERS_ONLY = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {name}}}
rules:
- {{apiGroups: [""], resources: [users{extra}], verbs: [impersonate]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {name}}}
subjects: [{{kind: {kind}, name: "{subject}", {where}}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {name}}}
"""

ANONYMOUS_MAY_ASK = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: skycheck-test-anon-whoami}
rules:
- {apiGroups: [authentication.k8s.io], resources: [selfsubjectreviews], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: skycheck-test-anon-whoami}
subjects: [{kind: User, name: "system:anonymous", apiGroup: rbac.authorization.k8s.io}]
roleRef:
  {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: skycheck-test-anon-whoami}
"""


def _kubeconfig(
    cluster: Any, path: Path, user: dict[str, Any], cluster_body: dict[str, Any] | None = None
) -> Path:
    admin = yaml.safe_load(cluster.admin_kubeconfig.read_text())
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [
                    {"name": "k", "cluster": cluster_body or admin["clusters"][0]["cluster"]}
                ],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            }
        )
    )
    return path


def _kubectl(cluster: Any, kubeconfig: Path, *args: str, cwd: Path | None = None) -> Any:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["KUBECACHEDIR"] = str(kubeconfig.parent / "kube-cache")
    return subprocess.run(
        [str(cluster.kubectl_path), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def _can_i(cluster: Any, kubeconfig: Path, check: dict[str, Any], *extra: str) -> str:
    """kubectl auth can-i for one check of a report: "allowed" or "denied"."""
    kind = check["resource"] + (f".{check['group']}" if check["group"] else "")
    target = f"{kind}/{check['name']}" if check["name"] else kind
    args = ["auth", "can-i", check["verb"], target, *extra]
    if check["subresource"]:
        args.append(f"--subresource={check['subresource']}")
    args += [f"--namespace={check['namespace']}"] if check["namespace"] else ["--all-namespaces"]
    done = _kubectl(cluster, kubeconfig, *args)
    assert done.stdout.strip() in ("yes", "no"), (args, done.stdout, done.stderr)
    return "allowed" if done.stdout.strip() == "yes" else "denied"


def _report(kubeconfig: Path, *args: str) -> tuple[int, dict[str, Any]]:
    outcome = invoke(["--kubeconfig", kubeconfig, "-o", "json", *args])
    assert "Traceback" not in outcome.err, outcome.err
    return outcome.code, json.loads(outcome.out)


def _whoami(cluster: Any, kubeconfig: Path, cwd: Path | None = None) -> dict[str, Any]:
    done = _kubectl(cluster, kubeconfig, "auth", "whoami", "-o", "json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    info: dict[str, Any] = json.loads(done.stdout)["status"]["userInfo"]
    return info


# --- point 1: impersonation in the kubeconfig -------------------------------------------


def test_kubeconfig_as_checks_the_impersonated_user_like_kubectl(cluster, ns, tmp_path):
    cluster.apply(BIND.format(name="bob-edit", ns=ns, kind="User", subject="bob", role="edit"))
    kubeconfig = _kubeconfig(cluster, tmp_path / "kc", {"token": cluster.admin_token, "as": "bob"})
    code, report = _report(kubeconfig, "-n", ns)
    assert report["subject"]["username"] == "bob"
    assert report["method"] == "SelfSubjectAccessReview"
    assert report["subject"]["groups"] == _whoami(cluster, kubeconfig)["groups"]
    # The admin token alone passes everything; bob may not touch nodes or RBAC.
    assert code == 1 and report["verdict"] == "fail"
    answers = {c["id"]: c["decision"] for c in report["checks"]}
    assert "denied" in answers.values() and "allowed" in answers.values()
    kubectl = {c["id"]: _can_i(cluster, kubeconfig, c) for c in report["checks"]}
    assert answers == kubectl


def test_kubeconfig_as_groups_grant_through_the_group(cluster, ns, tmp_path):
    cluster.apply(
        BIND.format(name="team-admin", ns=ns, kind="Group", subject="bob-team", role="admin")
    )
    user = {"token": cluster.admin_token, "as": "bob", "as-groups": ["bob-team"]}
    kubeconfig = _kubeconfig(cluster, tmp_path / "kc", user)
    _, report = _report(kubeconfig, "-n", ns)
    assert report["subject"]["username"] == "bob"
    assert report["subject"]["groups"] == _whoami(cluster, kubeconfig)["groups"]
    assert "bob-team" in report["subject"]["groups"]
    pods = [
        c
        for c in report["checks"]
        if c["namespace"] == ns and c["resource"] == "pods" and not c["subresource"]
    ]
    assert pods and all(c["decision"] == "allowed" for c in pods)
    assert {c["id"]: c["decision"] for c in report["checks"]} == {
        c["id"]: _can_i(cluster, kubeconfig, c) for c in report["checks"]
    }


def test_kubeconfig_as_is_sent_by_the_kubernetes_client_path_too(cluster, ns, tmp_path):
    """Basic auth forces the kubernetes client; the certificate authenticates carol."""
    cluster.apply(
        IMPERSONATE_USERS_ONLY.format(
            name=f"carol-as-bob-{ns}",
            extra="], resourceNames: [bob",
            kind="User",
            subject="carol",
            where="apiGroup: rbac.authorization.k8s.io",
        )
    )
    cert, key = _client_cert(cluster, "carol", "carol-team")
    user = {
        "client-certificate-data": base64.b64encode(cert).decode(),
        "client-key-data": base64.b64encode(key).decode(),
        "username": "ignored",
        "password": "ignored-password",
        "as": "bob",
    }
    kubeconfig = _kubeconfig(cluster, tmp_path / "kc", user)
    _, report = _report(kubeconfig, "-n", ns)
    assert report["subject"]["username"] == "bob" == _whoami(cluster, kubeconfig)["username"]


# --- point 2: anonymous, and impersonation without "impersonate groups" --------------------


def _anonymous_get(cluster: Any, path: str) -> int:
    """A real unauthenticated request: what anonymous may really do."""
    ctx = ssl.create_default_context(cafile=str(cluster.ca_cert))
    try:
        with urllib.request.urlopen(cluster.server + path, context=ctx, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_anonymous_gets_what_a_real_anonymous_request_gets(cluster, ns, tmp_path):
    pods = f"/api/v1/namespaces/{ns}/pods"
    cluster.apply(
        BIND.format(
            name="all-users", ns=ns, kind="Group", subject="system:authenticated", role="admin"
        )
    )
    args = ["--as", "system:anonymous", "-n", ns]
    code, report = _report(cluster.admin_kubeconfig, *args)
    assert report["subject"]["groups"] == ["system:unauthenticated"]
    listing = [c for c in report["checks"] if c["namespace"] == ns and c["resource"] == "pods"]
    assert listing and {c["decision"] for c in listing} == {"denied"}
    assert _anonymous_get(cluster, pods) == 403
    assert code == 1
    cluster.apply(
        BIND.format(
            name="anonymous-view",
            ns=ns,
            kind="Group",
            subject="system:unauthenticated",
            role="view",
        )
    )
    _, report = _report(cluster.admin_kubeconfig, *args)
    lists = [c for c in report["checks"] if c["id"] == "core.pods.list" and c["namespace"] == ns]
    assert lists and all(c["decision"] == "allowed" for c in lists), report["checks"]
    assert _anonymous_get(cluster, pods) == 200


@pytest.mark.parametrize(
    "username", ["bob", "system:anonymous", "system:serviceaccount:ns1:sky-sa", "alice"]
)
def test_groups_the_server_gives_an_impersonated_user(cluster, username):
    """identity.implied_groups is what the apiserver derives from Impersonate-User alone."""
    # Anonymous may not ask who it is by default (system:basic-user is for authenticated
    # users): let exactly that user ask, for the length of the test.
    cluster.apply(ANONYMOUS_MAY_ASK)
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    request = urllib.request.Request(
        cluster.server + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {cluster.admin_token}",
            "Content-Type": "application/json",
            "Impersonate-User": username,
        },
    )
    ctx = ssl.create_default_context(cafile=str(cluster.ca_cert))
    with urllib.request.urlopen(request, context=ctx, timeout=10) as resp:
        answer = json.loads(resp.read())
    cluster.delete(ANONYMOUS_MAY_ASK)
    groups = tuple(answer["status"]["userInfo"].get("groups") or ())
    assert sorted(groups) == sorted(identity.implied_groups(username))


def test_impersonating_users_is_enough_for_as(cluster, ns, tmp_path, sa_kubeconfig):
    """An identity that may impersonate users (not groups, no SubjectAccessReview) decides."""
    cluster.apply(BIND.format(name="bob-edit", ns=ns, kind="User", subject="bob", role="edit"))
    kubeconfig = sa_kubeconfig("impersonator")
    cluster.apply(
        IMPERSONATE_USERS_ONLY.format(
            name=f"impersonate-users-{ns}",
            extra="",
            kind="ServiceAccount",
            subject="impersonator",
            where=f"namespace: {ns}",
        )
    )
    code, report = _report(kubeconfig, "--as", "bob", "-n", ns)
    assert report["method"] == "Impersonation"
    decisions = {c["id"]: c["decision"] for c in report["checks"]}
    assert "unknown" not in decisions.values(), report
    assert code == 1  # edit grants no nodes or RBAC
    assert decisions == {
        c["id"]: _can_i(cluster, kubeconfig, c, "--as=bob") for c in report["checks"]
    }


def test_anonymous_through_impersonation_is_refused_like_kubectl(cluster, ns, sa_kubeconfig):
    """Impersonating users is enough to act as system:anonymous (the server adds
    system:unauthenticated itself), but anonymous may not create the review: unknown, with
    the server's reason, as kubectl auth can-i --as system:anonymous fails too."""
    kubeconfig = sa_kubeconfig("impersonator")
    cluster.apply(
        IMPERSONATE_USERS_ONLY.format(
            name=f"impersonate-users-{ns}",
            extra="",
            kind="ServiceAccount",
            subject="impersonator",
            where=f"namespace: {ns}",
        )
    )
    outcome = invoke(["--kubeconfig", kubeconfig, "--as", "system:anonymous", "-n", ns])
    assert outcome.code == 3
    assert "ask as system:anonymous" in outcome.err
    assert "selfsubjectaccessreviews" in outcome.err and "Traceback" not in outcome.err
    kubectl = _kubectl(
        cluster, kubeconfig, "auth", "can-i", "list", "pods", "-n", ns, "--as=system:anonymous"
    )
    assert kubectl.returncode != 0 and "selfsubjectaccessreviews" in kubectl.stderr


# --- point 8: relative paths ------------------------------------------------------------


def _other_ca(tmp_path: Path) -> Path:
    from tests.cluster import certs

    return Path(certs.generate(tmp_path / "other-pki").ca_cert)


@pytest.mark.parametrize("kind", ["exec", "client"])
def test_relative_paths_resolve_against_the_kubeconfig_file(cluster, ns, tmp_path, kind):
    """kubectl resolves certificate-authority, client-certificate, client-key and exec
    commands against the kubeconfig's directory: a stray file in the working directory
    must not be used, and the kubeconfig's own files must be found from anywhere."""
    config_dir, cwd = tmp_path / "config", tmp_path / "cwd"
    config_dir.mkdir()
    cwd.mkdir()
    shutil.copy(cluster.ca_cert, config_dir / "ca.crt")
    shutil.copy(_other_ca(tmp_path), cwd / "ca.crt")  # a stray CA that must not be trusted
    if kind == "exec":
        plugin = config_dir / "login"
        credential = {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {"token": cluster.admin_token},
        }
        plugin.write_text(f"#!/bin/sh\necho '{json.dumps(credential)}'\n")
        plugin.chmod(0o755)
        user: dict[str, Any] = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "./login",
                "interactiveMode": "Never",
            }
        }
    else:  # basic auth: the kubernetes client path; the certificate authenticates carol
        cert, key = _client_cert(cluster, "carol", "carol-team")
        (config_dir / "carol.crt").write_bytes(cert)
        (config_dir / "carol.key").write_bytes(key)
        user = {
            "client-certificate": "carol.crt",
            "client-key": "carol.key",
            "username": "ignored",
            "password": "ignored-password",
        }
    body = {"server": cluster.server, "certificate-authority": "ca.crt"}
    kubeconfig = _kubeconfig(cluster, config_dir / "kc", user, body)
    expected = _whoami(cluster, kubeconfig, cwd=cwd)["username"]
    old = Path.cwd()
    os.chdir(cwd)
    try:
        code, report = _report(kubeconfig, "-n", ns)
    finally:
        os.chdir(old)
    assert report["subject"]["username"] == expected
    assert code in (0, 1)
    # The other way round: the kubeconfig's CA is the wrong one, the working directory's is
    # right. kubectl refuses the server; so must skycheck, instead of trusting the stray.
    shutil.copy(_other_ca(tmp_path), config_dir / "ca.crt")
    shutil.copy(cluster.ca_cert, cwd / "ca.crt")
    assert _kubectl(cluster, kubeconfig, "auth", "whoami", cwd=cwd).returncode != 0
    os.chdir(cwd)
    try:
        outcome = invoke(["--kubeconfig", kubeconfig, "-n", ns, "--timeout", "10"])
    finally:
        os.chdir(old)
    assert outcome.code == 3, outcome
    assert "not trusted" in outcome.err or "certificate" in outcome.err.lower()

"""Both ways skycheck talks to the API server give the same answers.

Token and client-certificate users go straight through urllib3 (skycheck/transport.py,
no `import kubernetes`); exec plugins go through the kubernetes client. The same RBAC
must give the same report either way.
"""

from __future__ import annotations

import base64
import datetime
import json
import stat
import subprocess
import sys

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from skycheck.cli import run
from tests.integration._scenarios import scenario

pytestmark = pytest.mark.cluster

GRANT_CAROL = """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: carol-admin, namespace: {ns}}}
subjects: [{{kind: Group, name: "carol-team", apiGroup: rbac.authorization.k8s.io}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}}
"""


def _client_cert(cluster, user: str, group: str) -> tuple[bytes, bytes]:
    """A client certificate for ``user`` in ``group``, signed by the cluster's CA."""
    pki = cluster.directory / "pki"
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, user),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, group),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _kubeconfig(cluster, path, user_body):
    admin = yaml.safe_load(cluster.admin_kubeconfig.read_text())
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "k", "cluster": admin["clusters"][0]["cluster"]}],
                "users": [{"name": "u", "user": user_body}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            }
        )
    )
    return path


def _report(capsys, kubeconfig, ns):
    code = run(["--kubeconfig", str(kubeconfig), "-n", ns, "-o", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_client_certificate_user_is_checked_directly(cluster, ns, tmp_path, capsys):
    cluster.apply(GRANT_CAROL.format(ns=ns))
    cert, key = _client_cert(cluster, "carol", "carol-team")
    # Files relative to the kubeconfig's own directory, as kubectl resolves them.
    (tmp_path / "carol.crt").write_bytes(cert)
    (tmp_path / "carol.key").write_bytes(key)
    kubeconfig = _kubeconfig(
        cluster, tmp_path / "kc", {"client-certificate": "carol.crt", "client-key": "carol.key"}
    )
    code, report = _report(capsys, kubeconfig, ns)
    assert report["subject"]["username"] == "carol"
    assert "carol-team" in report["subject"]["groups"]
    namespaced = [c for c in report["checks"] if c["namespace"] == ns]
    pods = [c for c in namespaced if c["resource"] == "pods" and not c["subresource"]]
    assert pods and all(c["decision"] == "allowed" for c in pods)
    assert code == 1  # nodes and runtime classes are cluster-wide: admin does not grant them


def test_exec_plugin_user_goes_through_the_kubernetes_client(cluster, ns, tmp_path, capsys):
    cluster.apply(scenario("docs", ns))
    token = cluster.token(ns, "sky-sa")
    plugin = tmp_path / "plugin.py"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": token},
    }
    plugin.write_text(f"import json\nprint(json.dumps({credential!r}))\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    exec_user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(plugin)],
            "interactiveMode": "Never",
        }
    }
    via_exec = _report(capsys, _kubeconfig(cluster, tmp_path / "exec", exec_user), ns)
    via_token = _report(capsys, _kubeconfig(cluster, tmp_path / "tok", {"token": token}), ns)
    assert via_exec[1]["subject"]["username"] == f"system:serviceaccount:{ns}:sky-sa"
    decisions = [[(c["id"], c["decision"]) for c in r["checks"]] for _, r in (via_exec, via_token)]
    assert decisions[0] == decisions[1]
    assert via_exec[0] == via_token[0] == 0


def test_token_users_never_import_kubernetes(cluster, ns, tmp_path):
    kubeconfig = _kubeconfig(cluster, tmp_path / "kc", {"token": cluster.admin_token})
    code = (
        "import sys; from skycheck.cli import run; "
        f"run(['--kubeconfig', {str(kubeconfig)!r}, '-n', {ns!r}, '-o', 'json', "
        f"'--output-file', {str(tmp_path / 'r.json')!r}]); "
        "print('kubernetes' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[-1] == "False"
    assert json.loads((tmp_path / "r.json").read_text())["verdict"] == "pass"


def test_client_certificate_data_inline(cluster, ns, tmp_path, capsys):
    cluster.apply(GRANT_CAROL.format(ns=ns))
    cert, key = _client_cert(cluster, "carol", "carol-team")
    kubeconfig = _kubeconfig(
        cluster,
        tmp_path / "kc",
        {
            "client-certificate-data": base64.b64encode(cert).decode(),
            "client-key-data": base64.b64encode(key).decode(),
        },
    )
    _, report = _report(capsys, kubeconfig, ns)
    assert report["subject"]["username"] == "carol"

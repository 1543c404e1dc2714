"""Both ways skycheck talks to the API server give the same answers.

Token and client-certificate users, and the credentials of exec plugins, go straight
through urllib3 (skycheck/transport.py, no `import kubernetes`); auth providers and basic
auth go through the kubernetes client. The same RBAC must give the same report either way.
The direct transport uses the proxy kubectl would use: a small CONNECT proxy on 127.0.0.1
(tests/faults/connect_proxy.py) stands in front of the real apiserver.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import socket
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
from tests.faults.connect_proxy import ConnectProxy
from tests.faults.proxy import closed_port
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


def _kubeconfig(cluster, path, user_body, **cluster_fields):
    admin = yaml.safe_load(cluster.admin_kubeconfig.read_text())
    cluster_body = {**admin["clusters"][0]["cluster"], **cluster_fields}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "k", "cluster": cluster_body}],
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


def test_exec_plugin_user_gets_the_same_answers_as_its_token(
    cluster, ns, tmp_path, capsys, system_namespaces
):
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


# --- proxies -------------------------------------------------------------------------------

_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy")


@pytest.fixture
def proxy_env(monkeypatch):
    """A clean proxy environment; returns a setter that also feeds kubectl's environment."""
    for var in _PROXY_VARS:
        monkeypatch.delenv(var, raising=False)

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


def _kubectl_whoami(cluster, kubeconfig) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["KUBECACHEDIR"] = str(kubeconfig.parent / "kube-cache")
    return subprocess.run(
        [str(cluster.kubectl_path), f"--kubeconfig={kubeconfig}", "auth", "whoami"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def _loopback_hostname() -> str:
    """A host name (not "localhost", not an IP) that resolves to 127.0.0.1 locally."""
    name = socket.gethostname()
    try:
        resolved = socket.gethostbyname(name)
    except OSError:
        resolved = ""
    if name == "localhost" or resolved != "127.0.0.1":
        pytest.skip(f"needs a host name resolving to 127.0.0.1 (/etc/hosts); {name} does not")
    return name


def test_kubeconfig_proxy_url_is_used_like_kubectl(cluster, ns, tmp_path, capsys, proxy_env):
    with ConnectProxy() as proxy:
        kubeconfig = _kubeconfig(
            cluster, tmp_path / "kc", {"token": cluster.admin_token}, **{"proxy-url": proxy.url}
        )
        code, report = _report(capsys, kubeconfig, ns)
        assert code == 0 and report["verdict"] == "pass"
        target = cluster.server.removeprefix("https://")
        assert [t.target for t in proxy.tunnels] and {t.target for t in proxy.tunnels} == {target}
        seen = len(proxy.tunnels)
        assert _kubectl_whoami(cluster, kubeconfig).returncode == 0
        assert len(proxy.tunnels) > seen  # kubectl goes through it too


def test_proxy_credentials_are_sent_and_never_printed(cluster, ns, tmp_path, capsys, proxy_env):
    with ConnectProxy() as proxy:
        url = proxy.url.replace("http://", "http://proxyuser:proxy-pass-9876@")
        kubeconfig = _kubeconfig(
            cluster, tmp_path / "kc", {"token": cluster.admin_token}, **{"proxy-url": url}
        )
        code, report = _report(capsys, kubeconfig, ns)
        assert code == 0
        expected = "Basic " + base64.b64encode(b"proxyuser:proxy-pass-9876").decode()
        assert {t.proxy_authorization for t in proxy.tunnels} == {expected}
        assert "proxy-pass-9876" not in json.dumps(report)


def test_https_proxy_environment_with_no_proxy(cluster, ns, tmp_path, capsys, proxy_env):
    host = _loopback_hostname()
    port = cluster.server.rsplit(":", 1)[1]
    with ConnectProxy() as proxy:
        # The serving certificate names localhost: verify against that name, like kubectl.
        kubeconfig = _kubeconfig(
            cluster,
            tmp_path / "kc",
            {"token": cluster.admin_token},
            server=f"https://{host}:{port}",
            **{"tls-server-name": "localhost"},
        )
        proxy_env(HTTPS_PROXY=proxy.url)
        code, _ = _report(capsys, kubeconfig, ns)
        assert code == 0
        assert {t.target for t in proxy.tunnels} == {f"{host}:{port}"}
        before = len(proxy.tunnels)
        assert _kubectl_whoami(cluster, kubeconfig).returncode == 0
        assert len(proxy.tunnels) > before
        # NO_PROXY names the host: straight to the server, for skycheck and kubectl alike.
        for no_proxy in (host, f"{host}:{port}", f".example.com,{host.upper()}"):
            proxy_env(NO_PROXY=no_proxy)
            before = len(proxy.tunnels)
            code, _ = _report(capsys, kubeconfig, ns)
            assert code == 0
            assert _kubectl_whoami(cluster, kubeconfig).returncode == 0
            assert len(proxy.tunnels) == before, no_proxy
        # A CIDR matches IP literals only, never a host name: through the proxy again.
        proxy_env(NO_PROXY="127.0.0.0/8")
        before = len(proxy.tunnels)
        assert _report(capsys, kubeconfig, ns)[0] == 0
        assert len(proxy.tunnels) > before


def test_https_proxy_environment_skips_loopback_addresses(cluster, ns, tmp_path, capsys, proxy_env):
    """Go's httpproxy never proxies localhost or a loopback IP: neither do kubectl and skycheck."""
    with ConnectProxy() as proxy:
        kubeconfig = _kubeconfig(cluster, tmp_path / "kc", {"token": cluster.admin_token})
        proxy_env(HTTPS_PROXY=proxy.url)
        assert _report(capsys, kubeconfig, ns)[0] == 0
        assert _kubectl_whoami(cluster, kubeconfig).returncode == 0
        assert proxy.tunnels == []


def test_an_unreachable_proxy_is_named_in_the_error(cluster, ns, tmp_path, capsys, proxy_env):
    dead = f"http://127.0.0.1:{closed_port()}"
    kubeconfig = _kubeconfig(
        cluster, tmp_path / "kc", {"token": cluster.admin_token}, **{"proxy-url": dead}
    )
    code = run(["--kubeconfig", str(kubeconfig), "-n", ns, "--timeout", "5"])
    err = capsys.readouterr().err
    assert code == 3
    assert f"through proxy {dead}" in err

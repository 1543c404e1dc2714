"""Any SkyPilot version a user names or has maps to the proven release that decides it.

The mapping is evidence (rules/skypilot-releases.json: a digest of each release's
Kubernetes-facing files, scripts/gen_skypilot_releases.py), checked here offline against
manifests. No network, no cluster.
"""

from __future__ import annotations

import http.server
import importlib.util
import io
import json
import re
import sys
import threading
import zipfile
from pathlib import Path
from typing import ClassVar

import pytest

from skycheck import skypilot_version
from skycheck.catalogue import default_version, proven_versions, rules_dir
from skycheck.cli import run
from skycheck.errors import UndecidedError
from skycheck.render import OutputFormat
from skycheck.skypilot_version import is_nightly, release_digests, version_key

ROOT = Path(__file__).resolve().parents[2]
DOCS_SA = ROOT / "tests" / "manifests" / "create-sky-sa.yaml"
RELEASES = json.loads((rules_dir() / "skypilot-releases.json").read_text(encoding="utf-8"))
PROVEN = [p.version for p in proven_versions()]
PROVEN_RELEASES = [v for v in PROVEN if not is_nightly(v)]
PROVEN_NIGHTLIES = [v for v in PROVEN if is_nightly(v)]
DIGESTS = release_digests()


def _gen_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "gen_skypilot_releases", ROOT / "scripts" / "gen_skypilot_releases.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = run([*args, "-o", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out else {}


@pytest.fixture(scope="module")
def nightly_fix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the proven nightly needs of a default-identity launcher, and no more."""
    root = tmp_path_factory.mktemp("nightly")
    empty = root / "empty.yaml"
    empty.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n")
    fix = root / "fix.yaml"
    argv = ["--manifests", str(empty), "--as", "alice", "-n", "default", "-o", "json"]
    assert run([*argv, "--skypilot-version", PROVEN_NIGHTLIES[-1], "--fix", str(fix)]) == 1
    return fix


# --- the recorded evidence ------------------------------------------------------------


def test_the_releases_file_has_its_shape_and_every_proven_release_with_its_own_digest():
    entries = RELEASES["releases"]
    assert isinstance(RELEASES["description"], str)
    assert entries and all(set(e) == {"version", "package", "digest", "files"} for e in entries), (
        "each entry: version, package, digest, files"
    )
    for e in entries:
        version_key(e["version"])  # a SkyPilot version
        assert e["package"] == ("skypilot-nightly" if is_nightly(e["version"]) else "skypilot")
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", e["digest"]), e
        assert isinstance(e["files"], int) and e["files"] > 0
    versions = [e["version"] for e in entries]
    assert len(versions) == len(set(versions))
    releases = [v for v in versions if not is_nightly(v)]
    assert releases == sorted(releases, key=version_key)
    assert releases[0] == "0.10.0" and "0.14.1" in releases
    for proven in proven_versions():
        entry = next(e for e in entries if e["version"] == proven.version)
        assert entry["package"] == proven.package
        assert DIGESTS[proven.version] == entry["digest"]
    # Small enough to read in a diff.
    assert (rules_dir() / "skypilot-releases.json").stat().st_size < 20_000


def test_0_14_0_has_the_kubernetes_code_of_0_14_1_and_0_13_0_does_not():
    assert DIGESTS["0.14.0"] == DIGESTS["0.14.1"]
    assert DIGESTS["0.13.0"] != DIGESTS["0.14.1"]


def _wheel(files: dict[str, str]) -> zipfile.ZipFile:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return zipfile.ZipFile(buf)


def test_the_digest_covers_the_kubernetes_facing_files_and_nothing_else():
    gen = _gen_script()
    files = {
        "sky/__init__.py": "__version__ = '0.14.0'\n",
        "sky/server/server.py": "app = fastapi.FastAPI(prefix='/api/v1')\n",
        "sky/provision/kubernetes/instance.py": "def run(): ...\n",
        "sky/provision/kubernetes/manifests/fuse.yaml": "kind: DaemonSet\n",
        "sky/adaptors/kubernetes.py": "def core_api(): ...\n",
        "sky/templates/kubernetes-ray.yml.j2": "kind: Role\n",
        "sky/authentication.py": "kubernetes.core_api(context).patch_namespaced_secret()\n",
        "sky/backends/backend.py": "from sky.provision.kubernetes import utils\n",
        "sky/server/executor.py": "# no load_incluster_config here\nx = 'core_api('\n",
    }
    picked = gen.kubernetes_files(_wheel(files))
    assert set(picked) == {
        "sky/provision/kubernetes/instance.py",
        "sky/provision/kubernetes/manifests/fuse.yaml",
        "sky/adaptors/kubernetes.py",
        "sky/templates/kubernetes-ray.yml.j2",
        "sky/authentication.py",  # calls the Kubernetes client itself
    }
    base = gen.digest(picked)
    # The API server and the version string do not move the digest; a Kubernetes call does.
    other = {**files, "sky/server/server.py": "app = fastapi.FastAPI()\n", "sky/__init__.py": ""}
    assert gen.digest(gen.kubernetes_files(_wheel(other))) == base
    changed = {**files, "sky/provision/kubernetes/manifests/fuse.yaml": "kind: Deployment\n"}
    assert gen.digest(gen.kubernetes_files(_wheel(changed))) != base


def test_versions_sort_as_pep_440_says():
    order = [
        "0.10.3",
        "0.10.3.post1",
        "0.10.3.post2",
        "0.10.5",
        "0.12.3.post1",
        "0.14.1rc1",
        "0.14.1",
        "1.0.0.dev20261025",
        "1.0.0.dev20261027",
        "1.0.0rc1",
        "1.0.0",
    ]
    assert sorted(order, key=version_key) == order


# --- resolution -----------------------------------------------------------------------


def test_latest_is_the_newest_proven_release_never_a_nightly(capsys, nightly_fix):
    assert default_version() == max(PROVEN_RELEASES, key=version_key)
    assert "0.14.1" in PROVEN_RELEASES and version_key(default_version()) >= version_key("0.14.1")
    args = ("--manifests", str(nightly_fix), "--as", "alice", "-n", "default")
    for word in ("latest", "newest"):
        code, doc = _json(capsys, *args, "--skypilot-version", word)
        assert doc["skypilot"]["version"] == default_version() and not is_nightly(word)
        # What the nightly needs is not enough for the release: latest must not pass it.
        assert code == 1 and doc["verdict"] == "fail"
    code, doc = _json(capsys, *args, "--skypilot-version", "nightly")
    assert code == 0 and doc["skypilot"]["provenBy"] == PROVEN_NIGHTLIES[-1]


@pytest.mark.parametrize("manifest", ["docs-sa", "nightly-fix"])
def test_a_release_with_equal_kubernetes_code_decides_exactly_as_its_proven_twin(
    manifest, capsys, nightly_fix
):
    path = DOCS_SA if manifest == "docs-sa" else nightly_fix
    who = ("--sa", "sky-sa") if manifest == "docs-sa" else ("--as", "alice")
    args = ("--manifests", str(path), *who, "-n", "default", "--all-features")
    code_14_1, proven = _json(capsys, *args, "--skypilot-version", "0.14.1")
    code_14_0, twin = _json(capsys, *args, "--skypilot-version", "0.14.0")
    assert code_14_0 == code_14_1
    assert twin["skypilot"] == {
        "version": "0.14.0",
        "provenBy": "0.14.1",
        "proven": True,
        "source": "flag",
    }
    assert {k: v for k, v in twin.items() if k != "skypilot"} == {
        k: v for k, v in proven.items() if k != "skypilot"
    }
    assert not any("NOT PROVEN" in w for w in twin["warnings"])


@pytest.mark.parametrize(
    ("given", "kind"),
    [("0.15.0", "release"), ("0.14.1.post1", "release"), ("1.0.0.dev20991231", "nightly")],
)
def test_a_newer_version_is_checked_against_the_newest_proven_of_its_kind_and_flagged(
    given, kind, capsys, nightly_fix
):
    args = ("--manifests", str(nightly_fix), "--as", "alice", "-n", "default")
    newest = max(PROVEN_NIGHTLIES if kind == "nightly" else PROVEN_RELEASES, key=version_key)
    code, doc = _json(capsys, *args, "--skypilot-version", given)
    code_newest, proven = _json(capsys, *args, "--skypilot-version", newest)
    assert doc["skypilot"] == {
        "version": given,
        "provenBy": newest,
        "proven": False,
        "source": "flag",
    }
    assert code == code_newest and doc["checks"] == proven["checks"]
    assert any(w.startswith("NOT PROVEN") and newest in w for w in doc["warnings"])


@pytest.mark.parametrize("fmt", list(OutputFormat), ids=lambda f: f.value)
def test_not_proven_is_said_in_every_output_format(fmt, capsys):
    args = ["--manifests", str(DOCS_SA), "--sa", "sky-sa", "-n", "default"]
    code = run([*args, "--skypilot-version", "0.15.0", "-o", fmt.value])
    out = capsys.readouterr().out
    assert code == 0
    assert "NOT PROVEN" in out or 'proven="false"' in out, out[:2000]
    assert "0.15.0" in out


def _older_recorded_without_twin() -> list[str]:
    proven_digests = {DIGESTS[v] for v in PROVEN}
    oldest = min(PROVEN_RELEASES, key=version_key)
    return [
        v
        for v in DIGESTS
        if not is_nightly(v)
        and version_key(v) < version_key(oldest)
        and DIGESTS[v] not in proven_digests
    ]


@pytest.mark.parametrize("given", ["0.9.3", *_older_recorded_without_twin()[:3]])
def test_an_older_release_with_other_kubernetes_code_is_undecided(given, capsys):
    args = ["--manifests", str(DOCS_SA), "--sa", "sky-sa", "-n", "default", "-o", "json"]
    assert run([*args, "--skypilot-version", given]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing that could be read as a report
    line = captured.err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert f"SkyPilot {given} (flag) is older than every proven release" in line
    assert f"--skypilot-version {default_version()} checks against" in line


@pytest.mark.parametrize("given", ["banana", "0.14", "v0.14.1", "", "0.14.1; rm -rf /"])
def test_a_string_that_is_not_a_skypilot_version_is_a_usage_error(given, capsys):
    args = ["--manifests", str(DOCS_SA), "--sa", "sky-sa", "-n", "default"]
    assert run([*args, "--skypilot-version", given]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not a SkyPilot version" in err


# --- detection: the flag, the installed SkyPilot, the default ---------------------------


def _install(root: Path, monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    dist = root / f"skypilot-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: skypilot\nVersion: {version}\n\n")
    monkeypatch.setattr(sys, "path", [str(root), *sys.path])


def test_the_installed_skypilot_decides_when_no_flag_is_given(tmp_path, monkeypatch, capsys):
    _install(tmp_path, monkeypatch, "0.14.0")
    args = ("--manifests", str(DOCS_SA), "--sa", "sky-sa", "-n", "default")
    _, doc = _json(capsys, *args)
    assert doc["skypilot"] == {
        "version": "0.14.0",
        "provenBy": "0.14.1",
        "proven": True,
        "source": "installed",
    }
    _, doc = _json(capsys, *args, "--skypilot-version", "latest")
    assert doc["skypilot"]["source"] == "flag"  # the flag wins


def test_an_old_installed_skypilot_is_undecided_not_passed(tmp_path, monkeypatch, capsys):
    _install(tmp_path, monkeypatch, "0.9.3")
    args = ["--manifests", str(DOCS_SA), "--sa", "sky-sa", "-n", "default"]
    assert run(args) == 3
    err = capsys.readouterr().err
    assert "SkyPilot 0.9.3 (installed) is older than every proven release" in err
    assert skypilot_version.installed() == "0.9.3"


class _Health(http.server.BaseHTTPRequestHandler):
    """A stand-in for SkyPilot's /api/health: a real API server is the lab's to start."""

    body: ClassVar[bytes] = b""
    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        type(self).seen.append({"path": self.path, **dict(self.headers)})
        status = 200 if self.path == "/api/health" else 404
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body if status == 200 else b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api_server(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Serve a health body on 127.0.0.1; yields a function setting it, and the URL."""
    _Health.seen = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    def answer(doc: dict[str, str]) -> None:
        _Health.body = json.dumps(doc).encode()

    try:
        yield answer, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_api_server_the_config_points_at_names_the_version(api_server, tmp_path, capsys):
    answer, url = api_server
    answer({"status": "healthy", "version": "0.14.0"})
    config = tmp_path / "config.yaml"
    config.write_text(f"api_server:\n  endpoint: {url}/\n")
    args = ("--manifests", str(DOCS_SA), "--sa", "sky-sa", "-n", "default")
    _, doc = _json(capsys, *args, "--sky-config", str(config))
    assert doc["skypilot"] == {
        "version": "0.14.0",
        "provenBy": "0.14.1",
        "proven": True,
        "source": "api-server",
    }
    assert [s["path"] for s in _Health.seen] == ["/api/health"]
    _, doc = _json(capsys, *args, "--no-sky-config")
    assert doc["skypilot"]["source"] == "default"  # no config: no server asked
    assert len(_Health.seen) == 1


def test_the_environment_names_the_api_server_and_no_credentials_are_sent_or_shown(
    api_server, monkeypatch, capsys
):
    answer, url = api_server
    answer({"status": "healthy", "version": "0.11.2"})
    monkeypatch.setenv("SKYPILOT_API_SERVER_ENDPOINT", url.replace("//", "//alice:s3cret@"))
    args = ["--manifests", str(DOCS_SA), "--sa", "sky-sa", "-n", "default", "--no-sky-config"]
    assert run(args) == 3  # an unproven server is undecided, as an unproven release named is
    err = capsys.readouterr().err
    assert "SkyPilot 0.11.2 (api-server) is not proven (0.10.3.post2, 0.12.3.post1" in err
    assert "s3cret" not in err and "alice" not in err
    assert all("Authorization" not in s for s in _Health.seen)


@pytest.mark.parametrize("body", [{"status": "healthy"}, {"version": "banana"}, None])
def test_an_api_server_that_does_not_say_its_version_falls_back_with_a_warning(
    body, api_server, monkeypatch, capsys
):
    answer, url = api_server
    if body is None:
        url = "http://127.0.0.1:1"  # nothing listens: not answering
    else:
        answer(body)
    monkeypatch.setenv("SKYPILOT_API_SERVER_ENDPOINT", url)
    args = ("--manifests", str(DOCS_SA), "--sa", "sky-sa", "-n", "default", "--no-sky-config")
    code, doc = _json(capsys, *args)
    assert code == 0 and doc["skypilot"]["source"] == "default"
    assert any(
        w.startswith(f"the SkyPilot API server at {url}") and default_version() in w
        for w in doc["warnings"]
    ), doc["warnings"]


def test_installed_skypilot_comes_before_the_api_server(api_server, tmp_path, monkeypatch, capsys):
    answer, url = api_server
    answer({"version": "1.0.0.dev20991231"})
    monkeypatch.setenv("SKYPILOT_API_SERVER_ENDPOINT", url)
    _install(tmp_path, monkeypatch, "0.14.0")
    args = ("--manifests", str(DOCS_SA), "--sa", "sky-sa", "-n", "default", "--no-sky-config")
    _, doc = _json(capsys, *args)
    assert doc["skypilot"]["source"] == "installed" and _Health.seen == []


# Every skypilot release PyPI served when rules/skypilot-releases.json was made, older
# ones included (pip index versions skypilot), and a few nightlies.
SERVED = (
    "0.1.1",
    "0.1.2",
    "0.2.0",
    "0.2.1",
    "0.2.2",
    "0.2.3",
    "0.2.4",
    "0.2.5",
    "0.3.0",
    "0.3.1",
    "0.3.2",
    "0.3.3",
    "0.4.0",
    "0.4.1",
    "0.5.0",
    "0.6.0",
    "0.6.1",
    "0.7.0",
    "0.8.0",
    "0.8.1",
    "0.9.1",
    "0.9.2",
    "0.9.3",
    "1.0.0.dev20250101",
    "1.0.0.dev20260930",
)


@pytest.mark.parametrize("given", [*SERVED, *DIGESTS])
def test_every_served_version_is_a_version_and_decided_or_said_undecided(given):
    try:
        chosen, _ = skypilot_version.resolve(given, "flag")
    except UndecidedError as exc:
        assert version_key(given) < version_key(max(PROVEN, key=version_key))
        assert "--skypilot-version" in exc.one_line()
        return
    assert chosen.version in PROVEN and chosen.named == given
    assert DIGESTS.get(given) == DIGESTS[chosen.version] or chosen.version == given

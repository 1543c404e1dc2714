"""Exec plugins: bounded by --timeout, commands resolved like kubectl, answers checked.

Every plugin here is a real small script run as a real process; the API server is never
reached (the plugin runs before the first request), so these need no cluster.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import yaml

from tests.faults.proxy import closed_port
from tests.reliability._util import assert_one_line_error, invoke


def _plugin(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _kubeconfig(path: Path, exec_spec: dict[str, object]) -> Path:
    exec_spec = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "interactiveMode": "Never",
        **exec_spec,
    }
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [
                    {"name": "k", "cluster": {"server": f"https://127.0.0.1:{closed_port()}"}}
                ],
                "users": [{"name": "u", "user": {"exec": exec_spec}}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            }
        )
    )
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes: it holds no pipe and runs nothing.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_plugin_that_waits_is_killed_at_the_timeout(tmp_path):
    pids = tmp_path / "pids"
    # Like an SSO helper: starts a child that waits for a login, and waits for it.
    plugin = _plugin(
        tmp_path / "sso-login",
        f"""
        import os, subprocess, sys
        child = subprocess.Popen(["sleep", "300"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        child.wait()
        """,
    )
    kubeconfig = _kubeconfig(tmp_path / "kc", {"command": str(plugin)})
    outcome = invoke(["--kubeconfig", kubeconfig, "--timeout", "2", "-o", "json"])
    line = assert_one_line_error(outcome, 3, "exec plugin", str(plugin), "--timeout")
    assert "returned no credentials within 2 s" in line
    # The plugin and the child it started are gone: nothing is left waiting for a login.
    deadline = time.monotonic() + 10
    left = [int(p) for p in pids.read_text().split()]
    while any(_alive(p) for p in left) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in left if _alive(p)]


def test_the_timeout_holds_in_a_separate_process(tmp_path):
    """End to end: the skycheck process itself exits (a hang would hit this test's bound)."""
    plugin = _plugin(tmp_path / "slow", "import time\ntime.sleep(300)\n")
    kubeconfig = _kubeconfig(tmp_path / "kc", {"command": str(plugin)})
    done = subprocess.run(
        [sys.executable, "-m", "skycheck", "--kubeconfig", str(kubeconfig), "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard for the test run, not a speed assertion
    )
    assert done.returncode == 3
    assert "exec plugin" in done.stderr and "Traceback" not in done.stderr


def test_relative_command_resolves_against_the_kubeconfig_directory(tmp_path, monkeypatch):
    config_dir, elsewhere = tmp_path / "config", tmp_path / "cwd"
    config_dir.mkdir()
    elsewhere.mkdir()
    marker = tmp_path / "ran"
    body = f"open({str(marker)!r}, 'w').write(%r)\nraise SystemExit(7)\n"
    _plugin(config_dir / "plugin", body % "kubeconfig directory")
    _plugin(elsewhere / "plugin", body % "working directory")
    kubeconfig = _kubeconfig(config_dir / "kc", {"command": "./plugin"})
    monkeypatch.chdir(elsewhere)
    outcome = invoke(["--kubeconfig", kubeconfig, "--timeout", "10"])
    assert_one_line_error(outcome, 3, "exec plugin ./plugin", "exit code 7")
    assert marker.read_text() == "kubeconfig directory"


def test_bare_command_is_looked_up_in_path_not_the_kubeconfig_directory(tmp_path, monkeypatch):
    config_dir, bin_dir = tmp_path / "config", tmp_path / "bin"
    config_dir.mkdir()
    bin_dir.mkdir()
    marker = tmp_path / "ran"
    body = f"open({str(marker)!r}, 'w').write(%r)\nraise SystemExit(5)\n"
    _plugin(config_dir / "my-login", body % "kubeconfig directory")
    _plugin(bin_dir / "my-login", body % "PATH")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    kubeconfig = _kubeconfig(config_dir / "kc", {"command": "my-login"})
    assert_one_line_error(invoke(["--kubeconfig", kubeconfig]), 3, "exit code 5")
    assert marker.read_text() == "PATH"


def test_missing_plugin_is_a_kubeconfig_error_with_its_install_hint(tmp_path):
    kubeconfig = _kubeconfig(
        tmp_path / "kc",
        {"command": "./no-such-plugin", "installHint": "install it with: brew install it"},
    )
    assert_one_line_error(invoke(["--kubeconfig", kubeconfig]), 2, "brew install it")


def test_plugin_output_that_is_not_a_credential_is_undecided(tmp_path):
    plugin = _plugin(tmp_path / "chatty", "print('please log in at https://sso.example')\n")
    kubeconfig = _kubeconfig(tmp_path / "kc", {"command": str(plugin)})
    assert_one_line_error(invoke(["--kubeconfig", kubeconfig]), 3, "ExecCredential")


def test_v1_plugin_without_interactive_mode_is_rejected_like_kubectl(tmp_path):
    kubeconfig = _kubeconfig(tmp_path / "kc", {"command": "true", "interactiveMode": None})
    assert_one_line_error(invoke(["--kubeconfig", kubeconfig]), 2, "interactiveMode")


def test_plugin_token_never_reaches_output(tmp_path):
    token = "exec-secret-token-value-1234567890"
    plugin = _plugin(
        tmp_path / "ok",
        f"""
        import json
        print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1",
                          "kind": "ExecCredential", "status": {{"token": {token!r}}}}}))
        """,
    )
    kubeconfig = _kubeconfig(tmp_path / "kc", {"command": str(plugin)})
    outcome = invoke(["--kubeconfig", kubeconfig, "--timeout", "5"])
    assert outcome.code == 3  # nothing listens on the server's port
    assert token not in outcome.out + outcome.err

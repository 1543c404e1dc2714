"""``skycheck watch`` against the real control plane: scraped over loopback, parsed by
prometheus_client's own parser, the verdict following an RBAC change between scrapes."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.cluster

SERVING = re.compile(r"serving /metrics on 127\.0\.0\.1:(\d+)")
POLLS = 240  # scrapes at most, 0.25 s apart: a bound on waiting, not a timed assertion


class Watcher:
    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self.handle = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "skycheck", "watch", "--interval", "1", "--port", "0",
             "--address", "127.0.0.1", *args],
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.port = self._port()

    def _port(self) -> int:
        for _ in range(POLLS):
            match = SERVING.search(self.log.read_text())
            if match:
                return int(match.group(1))
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.25)
        raise AssertionError(f"the watcher never served: {self.log.read_text()}")

    def scrape(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        return {
            f.name: [(s.labels, s.value) for s in f.samples]
            for f in text_string_to_metric_families(text)
        }

    def next_run(self, after: float) -> dict[str, list[tuple[dict[str, str], float]]]:
        """The first scrape of a run newer than ``after`` (last-run time)."""
        for _ in range(POLLS):
            metrics = self.scrape()
            runs = metrics.get("skycheck_last_run_timestamp_seconds", [])
            if runs and runs[0][1] > after:
                return metrics
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.25)
        raise AssertionError("no new run was served")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=120)
        self.handle.close()
        return code


def _verdict(metrics, identity: str) -> str:
    (on,) = [
        labels["verdict"]
        for labels, value in metrics["skycheck_verdict"]
        if labels["identity"] == identity and value == 1.0
    ]
    return on


def _last_run(metrics) -> float:
    return metrics["skycheck_last_run_timestamp_seconds"][0][1]


@pytest.fixture
def watcher(tmp_path: Path) -> Iterator[list[Watcher]]:
    started: list[Watcher] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def test_watch_follows_an_rbac_change_and_stops_on_sigterm(cluster, ns, watcher, tmp_path):
    kubectl = [str(cluster.kubectl_path), "--kubeconfig", str(cluster.admin_kubeconfig)]
    subprocess.run([*kubectl, "create", "serviceaccount", "watched", "-n", ns], check=True)
    identity = f"system:serviceaccount:{ns}:watched"
    binding = f"{ns}-watched-admin"
    w = Watcher(
        ["--kubeconfig", str(cluster.admin_kubeconfig), "--sa", "watched", "-n", ns],
        tmp_path / "watch.log",
    )
    watcher.append(w)
    try:
        first = w.next_run(0.0)
        assert _verdict(first, identity) == "fail"
        core = [
            value
            for labels, value in first["skycheck_missing_checks"]
            if labels["feature"] == "core" and labels["identity"] == identity
        ]
        assert core and core[0] > 0
        assert first["skycheck_skypilot_version_info"][0][0]["version"]
        assert dict((labels["verdict"], v) for labels, v in first["skycheck_run_verdict"]) == {
            "pass": 0.0,
            "fail": 1.0,
            "unknown": 0.0,
        }
        second = w.next_run(_last_run(first))
        assert _verdict(second, identity) == "fail"  # two intervals, same answer

        subprocess.run(
            [*kubectl, "create", "clusterrolebinding", binding, "--clusterrole=cluster-admin",
             f"--serviceaccount={ns}:watched"],
            check=True,
        )  # fmt: skip
        metrics, seen = second, "fail"
        for _ in range(POLLS):  # RBAC caches catch up within moments
            metrics = w.next_run(_last_run(metrics))
            seen = _verdict(metrics, identity)
            if seen == "pass":
                break
        assert seen == "pass", w.log.read_text()
        assert all(
            value == 0.0
            for labels, value in metrics["skycheck_missing_checks"]
            if labels["required"] == "true"
        )
    finally:
        subprocess.run([*kubectl, "delete", "clusterrolebinding", binding, "--ignore-not-found"])
    assert w.stop() == 0
    log = w.log.read_text()
    assert "skycheck: watch: stopped" in log and "Traceback" not in log
    assert cluster.admin_token not in log


def test_an_unreachable_cluster_is_an_unknown_verdict_not_an_exit(cluster, watcher, tmp_path):
    config = cluster.admin_kubeconfig.read_text()
    unreachable = tmp_path / "unreachable.kubeconfig"
    unreachable.write_text(re.sub(r"server: \S+", "server: https://127.0.0.1:9", config))
    w = Watcher(
        ["--kubeconfig", str(unreachable), "--sa", "sky-sa", "-n", "default",
         "--timeout", "2", "--request-timeout", "1"],
        tmp_path / "watch.log",
    )  # fmt: skip
    watcher.append(w)
    first = w.next_run(0.0)
    second = w.next_run(_last_run(first))
    for metrics in (first, second):
        run = {labels["verdict"]: v for labels, v in metrics["skycheck_run_verdict"]}
        assert run == {"pass": 0.0, "fail": 0.0, "unknown": 1.0}
    assert w.proc.poll() is None  # still watching
    assert w.stop() == 0
    assert "check failed (verdict unknown)" in w.log.read_text()

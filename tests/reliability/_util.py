"""Helpers shared by the reliability tests: run the CLI in-process, write kubeconfigs."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from skycheck.cli import run

# Every review kind skycheck may create; none of them is stored by the API server.
REVIEW_RESOURCES = frozenset(
    {
        ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "subjectaccessreviews"),
        ("authorization.k8s.io", "localsubjectaccessreviews"),
        ("authentication.k8s.io", "selfsubjectreviews"),
    }
)
READ_VERBS = frozenset({"get", "list", "watch"})


@dataclass(frozen=True)
class Outcome:
    """What one CLI run printed and returned."""

    code: int
    out: str
    err: str

    @property
    def report(self) -> Any:
        """The parsed JSON report (None when nothing was printed)."""
        return json.loads(self.out) if self.out.strip() else None

    @property
    def err_lines(self) -> list[str]:
        return self.err.strip().splitlines()

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err_lines if line.startswith("skycheck: error:")]


def invoke(args: list[str]) -> Outcome:
    """Run ``skycheck ARGS`` in this process and capture what it prints."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run([str(a) for a in args])
    return Outcome(code, out.getvalue(), err.getvalue())


def assert_one_line_error(outcome: Outcome, code: int, *needles: str) -> str:
    """Exit ``code``, nothing on stdout, exactly one stderr line naming every needle."""
    assert outcome.code == code, outcome
    assert "Traceback" not in outcome.err, outcome.err
    lines = outcome.err_lines
    assert len(lines) == 1, outcome.err
    assert lines[0].startswith("skycheck: error: "), outcome.err
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
    assert outcome.out == "", outcome.out
    return lines[0]


def reports(outcome: Outcome) -> list[dict[str, Any]]:
    """The JSON report(s) printed: one report, or the multi-context form's ``reports``."""
    doc = outcome.report if outcome.out.lstrip().startswith("{") else None
    if doc is None:
        return []
    return list(doc["reports"]) if "reports" in doc else [doc]


def never_pass(outcome: Outcome) -> None:
    """The fail-closed invariant: a fault never yields exit 0 or a passing report."""
    assert outcome.code != 0, outcome
    doc = outcome.report if outcome.out.lstrip().startswith("{") else None
    if doc is not None:
        assert doc["verdict"] != "pass", doc["verdict"]
    for report in reports(outcome):
        assert report["verdict"] != "pass", report


def write_kubeconfig(
    path: Path,
    server: str,
    *,
    token: str | None = None,
    ca: Path | None = None,
    namespace: str | None = None,
    contexts: int = 1,
    user: dict[str, Any] | None = None,
    extra_users: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """A kubeconfig with ``contexts`` contexts (ctx-0, ctx-1, ...) on one server and user."""
    cluster: dict[str, Any] = {"server": server}
    if ca is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
    body = dict(user or {})
    if token is not None:
        body["token"] = token
    ctx: dict[str, Any] = {"cluster": "c", "user": "u"}
    if namespace:
        ctx["namespace"] = namespace
    users = [{"name": "u", "user": body}]
    users += [{"name": name, "user": u} for name, u in (extra_users or {}).items()]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": users,
        "contexts": [{"name": f"ctx-{i}", "context": ctx} for i in range(contexts)],
        "current-context": "ctx-0",
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return path


class AuditWindow:
    """The audit events between two marks, read incrementally.

    The harness's ``audit_mark``/``audit_events_between`` parse the whole audit log on every
    call, which grows with the session (tens of megabytes after a load run). This uses the
    same marker requests but reads only what was appended since the first mark, following
    the apiserver's log rotation (at 100 MB) into the rotated file.

        window = AuditWindow(cluster)   # first mark
        ...                             # what the test does
        events = window.close()         # second mark; the events strictly between
    """

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster
        self._path: Path = cluster.audit_log
        self._inode = self._path.stat().st_ino
        self._offset = 0
        self._pending = b""
        self._lines: list[bytes] = []
        self._skip_to_end()
        self._start = self._mark()

    def close(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        end = self._mark(timeout)
        events: list[dict[str, Any]] = []
        inside = False
        for raw in self._lines:
            if self._start.encode() in raw:
                inside = True
            elif end.encode() in raw:
                break
            elif inside:
                events.append(json.loads(raw))
        return events

    def _skip_to_end(self) -> None:
        self._offset = self._path.stat().st_size

    def _read_new(self) -> None:
        stat = self._path.stat()
        chunks = []
        if stat.st_ino != self._inode:  # rotated: finish the old file, then the new one
            rotated = max(self._path.parent.glob("audit-*.log"), key=lambda p: p.stat().st_mtime)
            with rotated.open("rb") as handle:
                handle.seek(self._offset)
                chunks.append(handle.read())
            self._inode, self._offset = stat.st_ino, 0
        with self._path.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        self._offset += len(data)
        chunks.append(data)
        text = self._pending + b"".join(chunks)
        *complete, self._pending = text.split(b"\n")
        self._lines += [line for line in complete if line.strip()]

    def _mark(self, timeout: float = 30.0) -> str:
        import secrets
        import time

        marker = f"skycheck-audit-mark-{secrets.token_hex(6)}"
        self._cluster.get(f"/api/v1/namespaces/{marker}")  # 404, but audited
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read_new()
            if any(marker.encode() in line for line in self._lines[-200:]):
                time.sleep(0.05)  # requests that finished just before the mark land too
                self._read_new()
                return marker
            time.sleep(0.02)
        raise AssertionError(f"audit mark {marker} never reached {self._path}")

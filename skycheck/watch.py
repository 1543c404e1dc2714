"""``skycheck watch``: re-check on an interval and serve the result on ``/metrics``.

RBAC drifts (a role edited, a binding removed, a SkyPilot upgrade that needs more), so the
watcher repeats the same check every ``--interval`` seconds and serves the families of
``-o prometheus`` (``skycheck.render.prometheus``) with ``prometheus_client``'s HTTP
server. A failed check never ends it: an error (the cluster unreachable, a bad manifest)
is one line on stderr and the run's verdict becomes unknown, which is a metric to alert on.
SIGTERM and SIGINT end it cleanly (exit 0) after the check in progress.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterable
from types import FrameType
from typing import TYPE_CHECKING

from skycheck.errors import SkycheckError, UsageError
from skycheck.models import Verdict

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from skycheck.request import CheckRequest


class _Latest:
    """The newest run's metric families, swapped whole so a scrape never sees half a run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: list[Metric] = []

    def set(self, families: list[Metric]) -> None:
        with self._lock:
            self._families = families

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            return list(self._families)


def validate(request: CheckRequest, interval: float, port: int) -> None:
    """Refuse what the watcher cannot honour, before it starts serving."""
    if interval < 1:
        raise UsageError("--interval must be at least 1 second")
    if not 0 <= port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    if request.output != "table" or request.output_file is not None or request.fix_path:
        raise UsageError(
            "watch serves its results on /metrics; it takes no -o, --output-file or --fix"
        )


def check_once(request: CheckRequest) -> list[Metric]:
    """One check's metric families; an error is one line on stderr and an unknown run."""
    from skycheck.errorline import fail, internal_error
    from skycheck.render.prometheus import metric_families
    from skycheck.request import collect
    from skycheck.secrets import redact

    started = time.time()
    try:
        outcome = collect(request)
    except SkycheckError as exc:
        fail(f"check failed (verdict unknown): {exc.one_line()}", exc.exit_code)
        return metric_families([], started, run_verdict=Verdict.UNKNOWN)
    except Exception as exc:  # a bug: reported, and the watcher goes on
        internal_error(exc, request.debug)
        return metric_families([], started, run_verdict=Verdict.UNKNOWN)
    for warning in dict.fromkeys(w for r in outcome.reports for w in r.warnings):
        sys.stderr.write(f"skycheck: warning: {redact(warning)}\n")
    return metric_families(list(outcome.reports), started)


def serve(request: CheckRequest, *, interval: float, port: int, address: str) -> int:
    """Check now and every ``interval`` seconds, serving ``/metrics``, until SIGTERM/SIGINT."""
    from prometheus_client import CollectorRegistry, start_http_server

    validate(request, interval, port)
    latest = _Latest()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(latest)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            server, thread = start_http_server(port, addr=address, registry=registry)
        except OSError as exc:
            raise UsageError(f"cannot serve on {address}:{port}: {exc.strerror or exc}") from None
        bound = server.server_address[1]
        sys.stderr.write(f"skycheck: watch: serving /metrics on {address}:{bound}\n")
        sys.stderr.flush()
        try:
            while not stop.is_set():
                latest.set(check_once(request))
                stop.wait(interval)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    sys.stderr.write("skycheck: watch: stopped\n")
    return 0

"""Keeping SkyPilot's fixed API server port (releases before 0.14) free for the lab.

Such a release's server refuses to start unless it can bind ``localhost:46580`` (with
SO_REUSEADDR, so TIME_WAIT is no obstacle). Two things take that port on a busy machine:

- an outgoing connection whose ephemeral local port happens to be 46580 (a control plane's
  long-lived watch holds it for the lab's whole life); the kernel's reserved-ports list keeps
  ephemeral ports and ``bind(0)`` off it, which :func:`reserve` sets where it may (root);
- a previous run's server still going: once the caller holds the port's lock no other lab
  run uses the port, so whoever listens there is left over (:func:`stop_leftover_servers`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

RESERVED = Path("/proc/sys/net/ipv4/ip_local_reserved_ports")


def reserve(port: int) -> bool:
    """Add ``port`` to the kernel's reserved local ports; False where that is not allowed."""
    try:
        current = RESERVED.read_text().strip()
    except OSError:
        return False
    if _in_ranges(port, current):
        return True
    try:
        RESERVED.write_text(f"{current},{port}" if current else str(port))
    except OSError:
        return False
    return _in_ranges(port, RESERVED.read_text().strip())


def _in_ranges(port: int, text: str) -> bool:
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, _, high = part.partition("-")
        if int(low) <= port <= int(high or low):
            return True
    return False


def bindable(port: int) -> bool:
    """Whether SkyPilot's own start-up check (common_utils.is_port_available) would pass."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("localhost", port))
        except OSError:
            return False
        return True


def holders(port: int) -> list[str]:
    """The local TCP sockets on ``port`` as ``state local->remote pid=N``, for an error."""
    states = {"01": "ESTABLISHED", "06": "TIME_WAIT", "0A": "LISTEN"}
    out: list[str] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
                if int(local.rsplit(":", 1)[1], 16) != port:
                    continue
                pids = ",".join(str(p) for p in _pids_of_inode(inode)) or "?"
                remote_port = int(remote.rsplit(":", 1)[1], 16)
                out.append(f"{states.get(state, state)} :{port}->:{remote_port} pid={pids}")
    return out


def stop_leftover_servers(port: int) -> list[int]:
    """SIGKILL every process listening on ``port``; returns their pids."""
    pids: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    pids.update(_pids_of_inode(fields[9]))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return sorted(pids)


def wait_bindable(port: int, wait: float) -> None:
    """Wait until the port can be bound as SkyPilot binds it; RuntimeError naming who holds
    it when ``wait`` seconds pass."""
    deadline = time.monotonic() + wait
    while not bindable(port):
        stop_leftover_servers(port)
        if time.monotonic() > deadline:
            held = "; ".join(holders(port)) or "no socket found"
            raise RuntimeError(f"port {port} still taken after {wait:.0f}s: {held}")
        time.sleep(1.0)


def _pids_of_inode(inode: str) -> list[int]:
    if inode == "0":
        return []
    target = f"socket:[{inode}]"
    found: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        found.append(int(proc.name))
                        break
    return found

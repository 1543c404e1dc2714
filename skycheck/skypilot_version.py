"""Which SkyPilot version a check is made against.

The catalogue states, per proven SkyPilot version, the effect of each check
(rules/skypilot-versions.json lists the versions the lab ran). The version is
``--skypilot-version`` when given (a proven version), else the SkyPilot
installed beside skycheck (mapped to the newest proven version not newer than
it, with a note when it is not itself proven), else the newest proven release
(a nightly only when asked for or installed: see catalogue.default_version).
"""

from __future__ import annotations

import os
import re
import sys

from skycheck.catalogue import default_version, proven_versions
from skycheck.errors import UsageError
from skycheck.models import SkyPilotVersion

# The PyPI distributions SkyPilot ships as; the nightly is newer when both are installed.
_DISTRIBUTIONS = ("skypilot-nightly", "skypilot")


def _key(version: str) -> tuple[tuple[int, ...], int, int]:
    """A sort key good enough for SkyPilot's versions: X.Y.Z, X.Y.Z.devN, X.Y.ZrcN."""
    m = re.match(r"^(\d+(?:\.\d+)*)(?:(rc|a|b)(\d+))?(?:\.dev(\d+))?", version)
    if not m:
        return ((), 0, 0)
    release = tuple(int(p) for p in m.group(1).split("."))
    release += (0,) * (3 - len(release))
    dev = int(m.group(4)) if m.group(4) else None
    # a .devN sorts before its release; a pre-release (rc/a/b) too
    return (release, 0 if dev is not None or m.group(2) else 1, dev or int(m.group(3) or 0))


def _normalized(name: str) -> str:
    """A distribution name as importlib.metadata compares them (PEP 503, with ``_``)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _metadata_version(path: str) -> str | None:
    """The ``Version:`` header of a ``*.dist-info`` / ``*.egg-info`` (directory or file)."""
    if os.path.isdir(path):
        names = ("METADATA", "PKG-INFO")
        path = next(
            (os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))), ""
        )
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break  # end of the headers
                if line.startswith("Version:"):
                    return line[len("Version:") :].strip() or None
    except OSError:
        return None
    return None


def installed() -> str | None:
    """The SkyPilot version installed in this Python environment, if any.

    Found as ``importlib.metadata.version`` finds it (the first ``*.dist-info`` or
    ``*.egg-info`` of that name along ``sys.path``, the version from its metadata), without
    importing importlib.metadata: it pulls in the email package, about 0.04 s, a quarter of
    a small offline check. tests/unit/test_skypilot_version_lookup.py compares the two.
    """
    wanted = [_normalized(d) for d in _DISTRIBUTIONS]
    found: dict[str, str | None] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            stem, _, suffix = name.rpartition(".")
            if suffix not in ("dist-info", "egg-info"):
                continue
            dist = _normalized(stem.partition("-")[0])
            if dist in wanted and dist not in found:
                found[dist] = _metadata_version(os.path.join(entry or ".", name))
    return next((v for d in wanted if (v := found.get(d))), None)


def select(flag: str | None) -> tuple[SkyPilotVersion, str | None]:
    """Return (the version to check against, a note to show or None)."""
    proven = [v.version for v in proven_versions()]
    if flag:
        if flag in ("latest", "newest"):
            return SkyPilotVersion(proven[-1], "flag"), None
        if flag not in proven:
            raise UsageError(
                f"--skypilot-version {flag}: not a proven SkyPilot version; "
                f"proven: {', '.join(proven)}"
            )
        return SkyPilotVersion(flag, "flag"), None
    found = installed()
    if not found:
        return SkyPilotVersion(default_version(), "default"), None
    if found in proven:
        return SkyPilotVersion(found, "installed"), None
    older = [v for v in proven if _key(v) <= _key(found)]
    chosen = older[-1] if older else proven[0]
    note = (
        f"SkyPilot {found} is installed; the catalogue is proven for {', '.join(proven)}: "
        f"checking against {chosen} (pass --skypilot-version to choose)"
    )
    return SkyPilotVersion(chosen, "installed", installed=found), note

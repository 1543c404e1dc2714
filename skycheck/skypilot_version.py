"""Which SkyPilot version a check is made against, and which proven release decides it.

The catalogue states, per proven SkyPilot release, the effect of each check
(rules/skypilot-versions.json lists the releases the lab ran). Any other release is
mapped by evidence: rules/skypilot-releases.json records a digest of each release's
Kubernetes-facing files (scripts/gen_skypilot_releases.py), and a release whose digest
equals a proven release's digest makes the same Kubernetes calls, so that proven
release decides it. A version newer than every proven one of its kind (release or
nightly) is checked against the newest proven one of that kind and flagged as not
proven. An older one with different Kubernetes code cannot be decided (exit 3): what
it needs was neither run nor matched, and passing it against a newer release's needs
could pass it falsely.

The version is ``--skypilot-version`` when given, else the SkyPilot installed beside
skycheck, else the version the SkyPilot API server the client points at reports
(skypilot_server.py), else the newest proven release (never a nightly: see
catalogue.default_version).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from functools import cache

from skycheck.catalogue import default_version, proven_versions, rules_dir
from skycheck.errors import CatalogueError, UndecidedError, UsageError
from skycheck.models import SkyPilotVersion

# The PyPI distributions SkyPilot ships as; the nightly is newer when both are installed.
_DISTRIBUTIONS = ("skypilot-nightly", "skypilot")

# The version shapes SkyPilot publishes: X.Y.Z, X.Y.Z.postN, X.Y.ZrcN, X.Y.Z.devN (nightly).
_VERSION = re.compile(r"(\d+\.\d+\.\d+)(?:(a|b|rc)(\d+))?(?:\.post(\d+))?(?:\.dev(\d+))?")

VersionKey = tuple[tuple[int, ...], int, int, int, int]


def version_key(version: str) -> VersionKey:
    """PEP 440 order for SkyPilot's version shapes; ValueError for anything else."""
    m = _VERSION.fullmatch(version)
    if not m:
        raise ValueError(f"not a SkyPilot version: {version}")
    release = tuple(int(p) for p in m.group(1).split("."))
    pre = {"a": 0, "b": 1, "rc": 2}.get(m.group(2) or "", 3)
    post = int(m.group(4)) if m.group(4) is not None else -1
    dev = int(m.group(5)) if m.group(5) is not None else None
    if dev is not None and not m.group(2) and m.group(4) is None:
        pre = -1  # X.Y.Z.devN comes before every pre-release of X.Y.Z
    # a .devN comes before the version it develops; no .dev comes last
    return (release, pre, int(m.group(3) or 0), post, (1 << 62) if dev is None else dev)


def is_nightly(version: str) -> bool:
    """skypilot-nightly builds are X.Y.Z.devN (1.0.0.devYYYYMMDD); releases have no .dev."""
    return ".dev" in version


@cache
def release_digests() -> dict[str, str]:
    """Version -> digest of its Kubernetes-facing files (rules/skypilot-releases.json)."""
    path = rules_dir() / "skypilot-releases.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {str(e["version"]): str(e["digest"]) for e in doc["releases"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CatalogueError(path.name, "releases", f"cannot read release digests: {exc}") from None


def _kind(version: str) -> str:
    return "nightly" if is_nightly(version) else "release"


def resolve(given: str, source: str) -> tuple[SkyPilotVersion, str | None]:
    """Map a SkyPilot version to the proven release that decides it.

    Returns the version and a warning to show (or None). Raises UsageError for a string
    that is not a SkyPilot version, UndecidedError for a version no proven release can
    decide.
    """
    try:
        key = version_key(given)
    except ValueError:
        raise UsageError(
            f"--skypilot-version {given}: not a SkyPilot version (a release such as "
            f"{default_version()}, a nightly such as 1.0.0.dev20261027, latest or nightly)"
        ) from None
    proven = [p.version for p in proven_versions()]
    if given in proven:
        return SkyPilotVersion(given, source), None
    digests = release_digests()
    twins = [p for p in proven if given in digests and digests.get(p) == digests[given]]
    if twins:
        # Prefer a twin of the same kind (a release for a release).
        twin = next((p for p in twins if _kind(p) == _kind(given)), twins[0])
        return SkyPilotVersion(twin, source, given=given), None
    kind = _kind(given)
    same_kind = [p for p in proven if _kind(p) == kind] or [default_version()]
    newest = max(same_kind, key=version_key)
    label = f"SkyPilot {given} ({source})"
    if key > version_key(newest):
        note = (
            f"NOT PROVEN: {label} is newer than every proven {kind} and its Kubernetes "
            f"code is not recorded as equal to a proven one's: checked against "
            f"{newest}'s needs, which it may not match"
        )
        return SkyPilotVersion(newest, source, given=given, proven=False), note
    oldest = min(same_kind, key=version_key)
    where = (
        f"older than every proven {kind} ({', '.join(same_kind)})"
        if key < version_key(oldest)
        else f"not proven ({', '.join(same_kind)} are)"
    )
    raise UndecidedError(
        f"{label} is {where}, and its Kubernetes code is not recorded as equal to a proven "
        f"one's: skycheck cannot tell what it needs; --skypilot-version {newest} checks "
        f"against {newest}'s needs anyway"
    )


def _named(flag: str) -> str:
    """``latest``/``newest``: the newest proven release; ``nightly``: the newest proven nightly."""
    if flag.lower() in ("latest", "newest"):
        return default_version()
    if flag.lower() == "nightly":
        nightlies = [p.version for p in proven_versions() if is_nightly(p.version)]
        if not nightlies:
            raise UsageError("--skypilot-version nightly: no nightly is proven")
        return max(nightlies, key=version_key)
    return flag


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


def select(
    flag: str | None, api_server: Callable[[], str | None] | None = None
) -> tuple[SkyPilotVersion, str | None]:
    """Return (the version to check against, a warning to show or None).

    In order: the flag, the SkyPilot installed beside skycheck, the version the SkyPilot
    API server reports (``api_server`` returns its endpoint, if one is configured), the
    newest proven release.
    """
    if flag is not None:
        return resolve(_named(flag.strip()), "flag")
    found = installed()
    if found:
        try:
            version_key(found)
        except ValueError:
            raise UndecidedError(
                f"the installed SkyPilot's version {found!r} is not a SkyPilot version: "
                f"pass --skypilot-version"
            ) from None
        return resolve(found, "installed")
    url = api_server() if api_server else None
    if url:
        from skycheck import skypilot_server

        reported = skypilot_server.server_version(url)
        try:
            version_key(reported or "")
        except ValueError:
            where = skypilot_server.display(url)
            what = f"reported {reported!r}" if reported else "did not report its version"
            note = (
                f"the SkyPilot API server at {where} {what}: checking against the newest "
                f"proven release {default_version()} (pass --skypilot-version to choose)"
            )
            return SkyPilotVersion(default_version(), "default"), note
        assert reported is not None
        return resolve(reported, "api-server")
    return SkyPilotVersion(default_version(), "default"), None

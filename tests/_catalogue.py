"""What the full catalogue amounts to, for tests that check "every check was made"."""

from __future__ import annotations

from skycheck.catalogue import bind, load_catalogue


def full_check_count(version: str | None = None) -> int:
    """Checks of every feature for a launcher on SkyPilot's default identity path."""
    catalogue = load_catalogue()
    return len(bind(catalogue, "ns", catalogue.names, catalogue.names, version=version))

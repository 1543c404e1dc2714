"""The ``skypilot_lab`` fixture: one lab per pytest session, for tests marked ``skypilot``.

Session-scoped and lazy like the ``cluster`` fixture: only tests that request it pay for the
build, the SkyPilot install (first run only) and the ~10 s start; it stops every process it
started when the session ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.skypilot import venvs
from tests.skypilot.lab import Lab

# The version CI exercises; the nightly is covered by the full inventory regeneration.
CI_VERSION = next(iter(venvs.VERSIONS))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Reject lab users that lack ``@pytest.mark.skypilot`` (so ``-m`` selects them all)."""
    offenders = [
        item.nodeid
        for item in items
        if "skypilot_lab" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("skypilot") is None
    ]
    if offenders:
        raise pytest.UsageError(
            "tests using skypilot_lab must be marked @pytest.mark.skypilot:\n  "
            + "\n  ".join(offenders)
        )


@pytest.fixture(scope="session")
def skypilot_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A running lab with the CI SkyPilot version installed."""
    venvs.ensure_venv(CI_VERSION)
    lab = Lab(tmp_path_factory.mktemp("skylab")).start()
    try:
        yield lab
    finally:
        lab.stop()

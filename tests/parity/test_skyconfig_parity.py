"""skycheck reads a SkyPilot setup as SkyPilot does: a differential test against SkyPilot.

For every case of the corpus (config file x kubeconfig x environment x in-cluster
token), SkyPilot's own functions (tests/parity/_skypilot_driver.py, run by each
pinned SkyPilot venv's python) and skycheck's resolution must agree on the
contexts SkyPilot uses, each context's namespace, identity and port mode, and
which controllers count as highly available. The only differences allowed are
deliberate and named: skycheck rejects (exit 2) a service account or namespace
name the API server would refuse at launch, an empty remote_identity map that
fails every launch, and (nightly only) remote_identity NONE, which nightlies read
as "no API credentials" while 0.14.1, which skycheck follows, reads it as an
account name.
"""

from __future__ import annotations

import os

import pytest

from tests.parity import _compare, _corpus, _venvs

pytestmark = pytest.mark.skypilot

MIN_CASES = 200


def _python(key: str):
    python = _venvs.venv_python(key)
    if python is None:
        where = _venvs.venv_root() / key
        message = f"SkyPilot venv {where} is absent or incomplete (no {_venvs.COMPLETE_STAMP})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; .ci/run installs it before the tests")
        pytest.skip(message)
    return python


@pytest.fixture(scope="module")
def corpus():
    cases = _corpus.corpus()
    assert len(cases) >= MIN_CASES
    assert len({c["id"] for c in cases}) == len(cases)
    return cases


@pytest.mark.parametrize("key", _venvs.PINNED)
def test_skycheck_resolves_every_setup_as_skypilot_does(key, corpus, record_property):
    python = _python(key)
    version, answers = _compare.run_skypilot(python, corpus)
    assert [a["id"] for a in answers] == [c["id"] for c in corpus]
    skipped = [a["id"] for a in answers if "skipped" in a]
    assert not skipped, "in-cluster cases need a private mount namespace (unshare -m)"
    disagreements: list[str] = []
    deliberate: list[str] = []
    compared_contexts = 0
    for case, theirs in zip(corpus, answers, strict=True):
        bad, known = _compare.compare(case, theirs, _compare.run_skycheck(case, version))
        disagreements += bad
        deliberate += known
        compared_contexts += len(theirs.get("contexts", {}))
    record_property("skypilot_version", version)
    record_property("combinations", len(corpus))
    record_property("contexts_compared", compared_contexts)
    record_property("disagreements", len(disagreements))
    record_property("deliberate_differences", len(deliberate))
    print(
        f"\nSkyPilot {version}: {len(corpus)} combinations, {compared_contexts} contexts, "
        f"{len(disagreements)} disagreements, {len(deliberate)} deliberate differences"
    )
    # The corpus reaches past the config file: most configs this release accepts resolve
    # contexts (0.10's stricter schema refuses most of the corpus, and skycheck with it).
    accepted = [a for a in answers if "error" not in (a.get("load") or {})]
    assert len(accepted) >= 20 and compared_contexts > len(accepted) // 2
    assert not disagreements, "\n".join(disagreements[:40])


def test_the_comparison_sees_a_difference():
    """A resolution that prefers an exact name over an earlier glob is caught."""
    case = _corpus.case("probe", "good-bad", identity={"*": "a-sa", "prod": "b-sa"}, allowed="all")
    ours = _compare.run_skycheck(case)
    theirs = {**ours, "contexts": {**ours["contexts"], "prod": {**ours["contexts"]["prod"]}}}
    theirs["contexts"]["prod"]["identity"] = "b-sa"
    bad, _ = _compare.compare(case, theirs, ours)
    assert bad == ["probe/prod: identity: SkyPilot 'b-sa', skycheck 'a-sa'"]


def test_deliberate_differences_are_only_the_named_ones():
    """skycheck's early rejections count as deliberate only for the reasons named above."""
    case = _corpus.case("probe", "good-bad", identity="NONE")
    ours = _compare.run_skycheck(case)
    assert "load" in ours and "'NONE'" in ours["load"]
    sky_ok = {
        "id": "probe",
        "allowed": ["good"],
        "contexts": {},
        "ha": {"jobs": False, "serve": False},
    }
    bad, known = _compare.compare(case, sky_ok, ours)
    assert not bad and len(known) == 1
    other = _corpus.case("probe", "good-bad", ports="ingress")
    bad, known = _compare.compare(other, sky_ok, {"id": "probe", "load": "x: ports: broken"})
    assert bad and not known


def test_a_missing_venv_skips_by_hand_and_fails_in_ci(tmp_path, monkeypatch):
    monkeypatch.setenv("SKYCHECK_CACHE", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="absent or incomplete"):
        _python("0.14.1")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"\.ci/run installs it"):
        _python("0.14.1")
    # A venv still being installed (no stamp yet) is absent too.
    (tmp_path / "skypilot" / "0.14.1" / "bin").mkdir(parents=True)
    (tmp_path / "skypilot" / "0.14.1" / "bin" / "python").touch()
    with pytest.raises(pytest.fail.Exception):
        _python("0.14.1")

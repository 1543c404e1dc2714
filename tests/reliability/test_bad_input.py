"""Bad input: every malformed file is exit 2 and one line naming it, never a traceback.

Four readers, each fed a corpus (tests/reliability/corpus/, one malformed input per file,
with the place the message must name), generated inputs a text file cannot hold (binary
junk, other encodings, alias bombs, nesting, oversized and endless files), and Hypothesis
fuzzing of both structure (a valid file with one value replaced by anything) and bytes (a
valid file with a few byte-level edits):

- kubeconfigs (``--kubeconfig``): never a connection attempt outside loopback (DNS is
  stubbed to refuse other hosts), so a fuzzed file that is still valid ends in exit 3;
- rules files (``load_catalogue`` on a temp dir, and ``skycheck rules`` through the CLI);
- RBAC manifests (``--manifests``, offline);
- SkyPilot configs (``--sky-config``; ``load_sky_config`` and the CLI).

Hypothesis runs derandomized (fixed examples, no example database), so the suite is
deterministic. Sizes stay small enough that a run is bounded in time and memory; the
oversized and endless inputs are refused before they are read into memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skycheck import catalogue, kube, skyconfig, yamlio
from skycheck.errors import ConfigError, InputError
from tests.faults.proxy import closed_port
from tests.reliability._util import Outcome, invoke

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
RULES = catalogue.rules_dir()
DOCS_MANIFEST = REPO / "tests" / "manifests" / "create-sky-sa.yaml"
FUZZ = settings(
    max_examples=120,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# A run on bad input must end quickly; generous, it only catches hangs.
BOUND_SECONDS = 20.0


# --- checking one outcome ------------------------------------------------------------------


def assert_input_error(outcome: Outcome, name: str, expect: str = "") -> str:
    """Exit 2, nothing on stdout, one stderr line naming the file (and the place)."""
    assert outcome.code == 2, outcome
    assert "Traceback" not in outcome.err, outcome.err
    assert outcome.out == "", outcome.out
    lines = outcome.err_lines
    assert len(lines) == 1, outcome.err
    line = lines[0]
    assert line.startswith("skycheck: error: "), line
    assert name in line, (name, line)
    assert expect in line, (expect, line)
    assert "\x1b" not in line and "\u202e" not in line, line  # no terminal control
    return line


def assert_clean(outcome: Outcome, codes: set[int], name: str) -> None:
    """Any of ``codes``; an error is one line (naming the file when it is exit 2)."""
    assert outcome.code in codes, outcome
    assert "Traceback" not in outcome.err, outcome.err
    errors = outcome.error_lines
    if outcome.code in (2, 3):
        assert len(errors) == 1 and len(outcome.err_lines) == 1, outcome.err
        assert outcome.out == ""
        if outcome.code == 2:
            assert name in errors[0], errors[0]
    else:
        assert not errors, outcome.err


def _expectation(path: Path) -> str:
    sidecar = path.with_name(path.name + ".expect")
    if sidecar.exists():
        return sidecar.read_text().strip()
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path}: first line must be '# expect: TEXT'"
    return first.removeprefix("# expect: ")


def _corpus(kind: str) -> list[Path]:
    return sorted(p for p in (CORPUS / kind).iterdir() if p.suffix in (".yaml", ".yml", ".json"))


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Refuse to resolve any host but loopback: fuzzed servers never reach the network."""
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "localhost", "::1", b"127.0.0.1"):
            raise socket.gaierror(socket.EAI_NONAME, "resolution disabled in tests")
        return real(host, *args, **kwargs)

    class QuickTime:
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def sleep(seconds: float) -> None:
            time.sleep(min(seconds, 0.01))

    with (
        mock.patch.object(socket, "getaddrinfo", guarded),
        mock.patch.object(kube, "time", QuickTime),
    ):
        yield


def _bounded(run: Callable[[], Outcome]) -> Outcome:
    started = time.monotonic()
    outcome = run()
    assert time.monotonic() - started < BOUND_SECONDS
    return outcome


# --- readers -----------------------------------------------------------------------------


def kubeconfig_run(path: Path) -> Outcome:
    with loopback_only():
        return invoke(["--kubeconfig", path, "--timeout", "2", "--no-sky-config"])


def manifests_run(path: Path) -> Outcome:
    return invoke(["--manifests", path, "--sa", "sky-sa", "-n", "default", "-o", "json"])


def skyconfig_run(path: Path, kubeconfig: Path) -> Outcome:
    with loopback_only():
        return invoke(["--kubeconfig", kubeconfig, "--sky-config", path, "--timeout", "2"])


def rules_load(path: Path) -> tuple[str | None, BaseException | None]:
    """load_catalogue on a directory holding only ``path`` as core.yaml.

    Returns (the one-line message of the input error it raised, an unexpected exception).
    """
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(path, Path(tmp) / "core.yaml")
        try:
            catalogue.load_catalogue(Path(tmp))
        except InputError as exc:  # CatalogueError, or the reader's error (not UTF-8 ...)
            return exc.one_line(), None
        except Exception as exc:
            return None, exc
    return None, None


def rules_cli(path: Path) -> Outcome:
    """``skycheck rules`` with the catalogue read from a directory holding ``path``."""
    catalogue.load_schema()  # cached from the real rules/ before rules_dir is redirected
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(path, Path(tmp) / "core.yaml")
        with mock.patch.object(catalogue, "rules_dir", lambda: Path(tmp)):
            return invoke(["rules"])


@pytest.fixture(scope="module")
def closed_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid kubeconfig whose server refuses connections."""
    path = tmp_path_factory.mktemp("kc") / "closed.kubeconfig"
    path.write_text(yaml.safe_dump(_kubeconfig_skeleton()))
    return path


def _kubeconfig_skeleton() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [
            {
                "name": "c",
                "cluster": {
                    "server": f"https://127.0.0.1:{closed_port()}",
                    "insecure-skip-tls-verify": True,
                },
            }
        ],
        "users": [{"name": "u", "user": {"token": "fuzz-token-0123456789"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "ns"}}],
        "preferences": {},
    }


# --- the corpus ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", _corpus("kubeconfig"), ids=lambda p: p.name)
def test_kubeconfig_corpus(path):
    assert_input_error(_bounded(lambda: kubeconfig_run(path)), path.name, _expectation(path))


@pytest.mark.parametrize("path", _corpus("manifests"), ids=lambda p: p.name)
def test_manifest_corpus(path):
    assert_input_error(_bounded(lambda: manifests_run(path)), path.name, _expectation(path))


@pytest.mark.parametrize("path", _corpus("skyconfig"), ids=lambda p: p.name)
def test_skyconfig_corpus(path, closed_kubeconfig):
    outcome = _bounded(lambda: skyconfig_run(path, closed_kubeconfig))
    assert_input_error(outcome, path.name, _expectation(path))
    with pytest.raises(ConfigError) as raised:
        skyconfig.load_sky_config(path, missing_ok=False)
    assert _expectation(path) in raised.value.one_line()


@pytest.mark.parametrize("path", _corpus("rules"), ids=lambda p: p.name)
def test_rules_corpus(path):
    message, crash = rules_load(path)
    assert crash is None, repr(crash)
    assert message is not None, "accepted a broken rules file"
    assert "core.yaml" in message and _expectation(path) in message, message
    assert "\n" not in message
    assert_input_error(_bounded(lambda: rules_cli(path)), "core.yaml", _expectation(path))


# --- generated inputs: what a text corpus cannot hold ---------------------------------------


def _alias_bomb(levels: int = 10, width: int = 10) -> bytes:
    lines = ["bomb:", "  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        refs = ", ".join([f"*l{i - 1}"] * width)
        lines.append(f"  l{i}: &l{i} [{refs}]")
    return ("\n".join(lines) + "\n").encode()


GENERATED: dict[str, tuple[bytes, str]] = {
    "binary-junk": (bytes(range(256)) * 16, "not UTF-8"),
    "png-header": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "not UTF-8"),
    "utf-16-with-bom": ("\ufeffcurrent-context: c\n".encode("utf-16"), "not UTF-8"),
    "invalid-utf-8": (b"current-context: \xc3\x28\n", "not UTF-8"),
    "nul-byte": (b"current-context: c\x00\n", "unacceptable character #x0000"),
    "escape-and-bidi-in-a-key": ("a: 1\n\x1b[2J\u202ekey: 2\n".encode(), "position 5"),
    "alias-bomb": (_alias_bomb(), "alias"),
    "too-many-aliases": (
        ("base: &b x\nrefs: [" + ", ".join(["*b"] * 101) + "]\n").encode(),
        "more than 100 aliases",
    ),
    "deep-nesting": (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nesting"),
    "deep-block-nesting": (
        "".join("  " * i + f"k{i}:\n" for i in range(1500)).encode() + b"  " * 1500 + b"x\n",
        "nesting",
    ),
}


def _write(tmp_path: Path, name: str, data: bytes, suffix: str = ".yaml") -> Path:
    path = tmp_path / f"{name}{suffix}"
    path.write_bytes(data)
    return path


def _oversized(tmp_path: Path) -> Path:
    path = tmp_path / "oversized.yaml"
    with path.open("wb") as handle:  # sparse: costs no disk
        handle.truncate(yamlio.MAX_BYTES + 1)
    return path


def _in_child(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run jobs in a resource-limited child (tests/reliability/_child.py)."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.reliability._child"],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(jobs), f"child died after {len(answers)} jobs: {result.stderr}"
    return answers


@pytest.mark.parametrize("reader", ["kubeconfig", "manifests", "skyconfig", "rules"])
def test_generated_inputs(tmp_path, closed_kubeconfig, reader):
    names = sorted(GENERATED)
    paths = [_write(tmp_path, name, GENERATED[name][0]) for name in names]
    args = {
        "kubeconfig": lambda p: ["--kubeconfig", str(p), "--timeout", "2", "--no-sky-config"],
        "manifests": lambda p: ["--manifests", str(p), "--sa", "sky-sa", "-n", "default"],
        "skyconfig": lambda p: ["--kubeconfig", str(closed_kubeconfig), "--sky-config", str(p)],
    }
    if reader == "rules":
        jobs = [{"rules": str(p)} for p in paths]
    else:
        jobs = [{"args": args[reader](p)} for p in paths]
    started = time.monotonic()
    answers = _in_child(jobs)
    assert time.monotonic() - started < BOUND_SECONDS * 2
    for name, path, answer in zip(names, paths, answers, strict=True):
        expect = GENERATED[name][1]
        if reader == "rules":
            assert answer["crash"] is None, (name, answer)
            message = answer["message"]
            assert message and "core.yaml" in message and expect in message, (name, message)
        else:
            outcome = Outcome(answer["code"], answer["out"], answer["err"])
            assert_input_error(outcome, path.name, expect)


def test_oversized_files_are_refused_unread(tmp_path, closed_kubeconfig):
    path = _oversized(tmp_path)
    assert_input_error(_bounded(lambda: kubeconfig_run(path)), path.name, "bytes")
    assert_input_error(_bounded(lambda: manifests_run(path)), path.name, "bytes")
    outcome = _bounded(lambda: skyconfig_run(path, closed_kubeconfig))
    assert_input_error(outcome, path.name, "bytes")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.parametrize("flag", ["--kubeconfig", "--sky-config", "--manifests"])
def test_endless_files_are_read_only_up_to_the_cap(closed_kubeconfig, flag):
    # stat() says 0 bytes; reading it all would exhaust memory. In a child process with a
    # memory limit, so a regression fails this test instead of taking pytest down.
    args = {
        "--kubeconfig": ["--kubeconfig", "/dev/zero"],
        "--sky-config": ["--kubeconfig", str(closed_kubeconfig), "--sky-config", "/dev/zero"],
        "--manifests": ["--manifests", "/dev/zero", "--sa", "x"],
    }[flag]
    result = _process(args)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "/dev/zero" in lines[0], lines


def test_a_directory_where_a_file_belongs(tmp_path, closed_kubeconfig):
    assert_input_error(kubeconfig_run(tmp_path), tmp_path.name, "directory")
    assert_input_error(skyconfig_run(tmp_path, closed_kubeconfig), tmp_path.name, "directory")


def test_unknown_kinds_in_manifests_are_ignored_not_fatal(tmp_path):
    text = DOCS_MANIFEST.read_text() + (
        "\n---\napiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\n"
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {}\n"
    )
    path = _write(tmp_path, "with-unknown-kinds", text.encode())
    outcome = manifests_run(path)
    assert_clean(outcome, {0, 1}, path.name)
    assert outcome.report["checks"]


def test_odd_but_valid_unicode_is_accepted(tmp_path, closed_kubeconfig):
    """A BOM, CRLF line ends and non-ASCII names are valid YAML: no input error."""
    config = yaml.safe_dump(_kubeconfig_skeleton(), allow_unicode=True)
    config = config.replace("name: u\n", "name: \u00fcser-\u65e5\u672c\n").replace(
        "user: u\n", "user: \u00fcser-\u65e5\u672c\n"
    )
    path = _write(tmp_path, "bom-crlf", ("\ufeff" + config.replace("\n", "\r\n")).encode())
    outcome = kubeconfig_run(path)
    assert_clean(outcome, {3}, path.name)  # read fine; the (closed) server is unreachable
    assert "connection refused" in outcome.err


# --- Hypothesis: structure ------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=24),
    st.sampled_from(["", "*", "-", "~", "null", "yes", "0o12", "1e3", "\u202e", "\x1b[31m"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
_DANGEROUS_KEYS = frozenset({"exec", "auth-provider", "tokenFile"})  # would run or read things


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _paths(value, (*prefix, i))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    """Replace, delete, or add a sibling at ``path``; returns the new document."""
    if not path:
        return value
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "add" and isinstance(parent, dict):
        parent[f"extra-{len(parent)}"] = value
    elif op == "add" and isinstance(parent, list):
        parent.insert(last, value)
    else:
        parent[last] = value
    return doc


def _contains_key(value: Any, keys: frozenset[str]) -> bool:
    if isinstance(value, dict):
        return any(k in keys or _contains_key(v, keys) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_key(v, keys) for v in value)
    return False


@st.composite
def mutated_documents(draw: st.DrawFn, original: Any) -> Any:
    doc = yaml.safe_load(yaml.safe_dump(original))  # a deep copy
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        op = draw(st.sampled_from(["replace", "delete", "add"]) if path else st.just("replace"))
        doc = _mutate(doc, path, op, draw(_values))
    return doc


def _dump_all(docs: list[Any]) -> bytes:
    return yaml.safe_dump_all(docs, allow_unicode=True).encode()


@FUZZ
@given(doc=mutated_documents(_kubeconfig_skeleton()))
def test_fuzz_kubeconfig_structure(doc):
    if _contains_key(doc, _DANGEROUS_KEYS):
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "fuzzed", _dump_all([doc]))
        assert_clean(_bounded(lambda: kubeconfig_run(path)), {2, 3}, path.name)


@FUZZ
@given(doc=mutated_documents(yamlio.load_one((RULES / "core.yaml").read_text(), "core.yaml")))
def test_fuzz_rules_structure(doc):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "fuzzed", _dump_all([doc]))
        message, crash = rules_load(path)
    assert crash is None, repr(crash)
    if message is not None:
        assert "core.yaml" in message and "\n" not in message, message


_DOCS = list(yaml.safe_load_all(DOCS_MANIFEST.read_text()))


@FUZZ
@given(index=st.integers(0, len(_DOCS) - 1), data=st.data())
def test_fuzz_manifest_structure(index, data):
    docs = yaml.safe_load(yaml.safe_dump(_DOCS))
    docs[index] = data.draw(mutated_documents(docs[index]))
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "fuzzed", _dump_all(docs))
        assert_clean(_bounded(lambda: manifests_run(path)), {0, 1, 2}, path.name)


_SKY = yamlio.load_one(
    (REPO / "tests" / "unit" / "skyconfigs" / "multi-context.yaml").read_text(), "sky"
)


@FUZZ
@given(doc=mutated_documents(_SKY))
def test_fuzz_skyconfig_structure(doc):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "fuzzed", _dump_all([doc]))
        try:
            skyconfig.load_sky_config(path, missing_ok=False)
        except ConfigError as exc:
            assert path.name in exc.one_line()


# --- Hypothesis: bytes ----------------------------------------------------------------------

_SNIPPETS = [
    b"\t",
    b":",
    b": ",
    b"- ",
    b"{",
    b"}",
    b"[",
    b"]",
    b"&a ",
    b"*a",
    b"!!binary ",
    b"!!python/name:os.system ",
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\n  ",
    b'"',
    b"'",
    b"---\n",
    b"...\n",
    b"<<: ",
    b"? ",
    b"%YAML 1.1\n",
    b"\xe2\x80\xae",
    b"\x1b[31m",
]


@st.composite
def mutated_bytes(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "overwrite", "truncate", "duplicate"]))
        chunk = draw(st.sampled_from(_SNIPPETS) | st.binary(min_size=1, max_size=6))
        if op == "insert":
            data[pos:pos] = chunk
        elif op == "delete":
            del data[pos : pos + len(chunk)]
        elif op == "overwrite":
            data[pos : pos + len(chunk)] = chunk
        elif op == "truncate":
            del data[pos:]
        else:
            data[pos:pos] = data[pos : pos + 40]
    return bytes(data)


_KUBECONFIG_BYTES = yaml.safe_dump(_kubeconfig_skeleton(), sort_keys=False).encode()


@FUZZ
@given(data=mutated_bytes(_KUBECONFIG_BYTES))
def test_fuzz_kubeconfig_bytes(data):
    if any(key.encode() in data for key in _DANGEROUS_KEYS):
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "fuzzed", data)
        assert_clean(_bounded(lambda: kubeconfig_run(path)), {2, 3}, path.name)


@FUZZ
@given(data=mutated_bytes((RULES / "core.yaml").read_bytes()))
def test_fuzz_rules_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "fuzzed", data)
        message, crash = rules_load(path)
    assert crash is None, repr(crash)
    if message is not None:
        assert "core.yaml" in message and "\n" not in message, message


@FUZZ
@given(data=mutated_bytes(DOCS_MANIFEST.read_bytes()), suffix=st.sampled_from([".yaml", ".json"]))
def test_fuzz_manifest_bytes(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "fuzzed", data, suffix)
        assert_clean(_bounded(lambda: manifests_run(path)), {0, 1, 2}, path.name)


@FUZZ
@given(
    data=mutated_bytes((REPO / "tests" / "unit" / "skyconfigs" / "multi-context.yaml").read_bytes())
)
def test_fuzz_skyconfig_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "fuzzed", data)
        try:
            skyconfig.load_sky_config(path, missing_ok=False)
        except ConfigError as exc:
            assert path.name in exc.one_line() and "\n" not in exc.one_line()


# --- the same through a real process ----------------------------------------------------------


def _limit_memory() -> None:
    # 2 GiB of address space: an unbounded read or an alias expansion would hit it.
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def _process(args: list[str]) -> subprocess.CompletedProcess[str]:
    # HOME is an empty directory (tests/conftest.py): no SkyPilot config.
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "SKYPILOT_CONFIG")}
    return subprocess.run(
        [sys.executable, "-m", "skycheck", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO,
        preexec_fn=_limit_memory,
    )


@pytest.mark.parametrize(
    "args, name",
    [
        (["--kubeconfig", str(CORPUS / "kubeconfig" / "python-tag.yaml")], "python-tag.yaml"),
        (["--kubeconfig", "/dev/zero", "--debug"], "/dev/zero"),
        (
            ["--manifests", str(CORPUS / "manifests" / "third-document-broken.yaml"), "--sa", "x"],
            "third-document-broken.yaml",
        ),
        (["--manifests", "ALIAS_BOMB", "--sa", "x", "--debug"], "bomb.yaml"),
        (["--kubeconfig", "CLOSED", "--sky-config", "BINARY"], "junk.yaml"),
    ],
    ids=["kubeconfig-tag", "endless-kubeconfig", "manifest-syntax", "alias-bomb", "binary-sky"],
)
def test_bad_input_in_a_real_process(tmp_path, closed_kubeconfig, args, name):
    bomb = _write(tmp_path, "bomb", _alias_bomb())
    junk = _write(tmp_path, "junk", GENERATED["binary-junk"][0])
    args = [
        {"ALIAS_BOMB": str(bomb), "CLOSED": str(closed_kubeconfig), "BINARY": str(junk)}.get(a, a)
        for a in args
    ]
    result = _process(args)
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skycheck: error: ") and name in lines[0], lines

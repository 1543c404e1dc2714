"""--fix and --output-file: atomic writes, no writing through links, no deleting user files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from skycheck import outfile
from skycheck.cli import run
from skycheck.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
DOCS_SA = ROOT / "tests" / "manifests" / "create-sky-sa.yaml"  # core passes, optional fail
ADMIN = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: sky-admin}
subjects: [{kind: ServiceAccount, name: sky-sa, namespace: default}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
"""
NOTHING = """\
apiVersion: v1
kind: ServiceAccount
metadata: {name: sky-sa, namespace: default}
"""


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _check(tmp_path: Path, manifest: str, *extra: str) -> int:
    m = tmp_path / "rbac.yaml"
    m.write_text(manifest, encoding="utf-8")
    return run(["--manifests", str(m), "--sa", "sky-sa", "-n", "default", "-o", "json", *extra])


def test_new_file_gets_the_mode_a_new_file_gets(tmp_path: Path, umask_022: None) -> None:
    target = tmp_path / "out.txt"
    outfile.write_text(target, "hello\n", "--output-file")
    assert target.read_text(encoding="utf-8") == "hello\n"
    assert target.stat().st_mode & 0o777 == 0o644
    os.umask(0o077)
    outfile.write_text(target, "again\n", "--output-file")
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temp file left


def test_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        outfile.write_text(target, "\udcff", "--output-file")  # unencodable: fails mid-write
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_missing_directory_is_one_line_exit_2(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as exc:
        outfile.write_text(tmp_path / "no" / "out.txt", "x", "--output-file")
    assert exc.value.exit_code == 2
    assert "cannot write --output-file" in exc.value.one_line()


@pytest.mark.parametrize("flag", ["--output-file", "--fix"])
def test_symlink_target_is_refused_and_its_target_untouched(
    tmp_path: Path, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "precious.yaml"
    precious.write_text("mine\n", encoding="utf-8")
    link = tmp_path / "link.yaml"
    link.symlink_to(precious)
    assert _check(tmp_path, NOTHING, flag, str(link)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "symbolic link" in err and "Traceback" not in err
    assert precious.read_text(encoding="utf-8") == "mine\n"
    assert link.is_symlink()


def test_dangling_symlink_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "link.yaml"
    link.symlink_to(tmp_path / "nowhere.yaml")
    assert _check(tmp_path, NOTHING, "--fix", str(link)) == 2
    assert not (tmp_path / "nowhere.yaml").exists()


def test_fifo_and_directory_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert _check(tmp_path, NOTHING, "--output-file", str(fifo)) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert _check(tmp_path, NOTHING, "--fix", str(tmp_path)) == 2


def test_refused_output_file_writes_no_fix_either(tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "elsewhere.json")
    fix = tmp_path / "fix.yaml"
    assert _check(tmp_path, NOTHING, "--output-file", str(link), "--fix", str(fix)) == 2
    assert not fix.exists()


def test_nothing_missing_leaves_an_existing_file_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("# hand-written\n", encoding="utf-8")
    assert _check(tmp_path, ADMIN, "--fix", str(mine)) == 0
    assert mine.read_text(encoding="utf-8") == "# hand-written\n"
    assert "left as it was" in capsys.readouterr().err


def test_nothing_missing_creates_no_file(tmp_path: Path) -> None:
    fix = tmp_path / "fix.yaml"
    assert _check(tmp_path, ADMIN, "--fix", str(fix)) == 0
    assert not fix.exists()


def test_fix_replaces_a_regular_file(tmp_path: Path) -> None:
    fix = tmp_path / "fix.yaml"
    fix.write_text("old\n", encoding="utf-8")
    assert _check(tmp_path, NOTHING, "--fix", str(fix)) == 1
    assert fix.read_text(encoding="utf-8").startswith("# Made by skycheck")


def test_manifest_command_refuses_a_symlink(tmp_path: Path) -> None:
    precious = tmp_path / "precious.yaml"
    precious.write_text("mine\n", encoding="utf-8")
    link = tmp_path / "link.yaml"
    link.symlink_to(precious)
    assert run(["manifest", "--sa", "sky-sa", "--output-file", str(link)]) == 2
    assert precious.read_text(encoding="utf-8") == "mine\n"
    out = tmp_path / "sa.yaml"
    assert run(["manifest", "--sa", "sky-sa", "--output-file", str(out)]) == 0
    assert "kind: ServiceAccount" in out.read_text(encoding="utf-8")

"""The action's inputs to check flags (skycheck/github_action.py); tests/packaging runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from skycheck.cli import parse_check_args
from skycheck.errors import UsageError
from skycheck.github_action import check_args


def test_inputs_become_the_check_flags():
    env = {
        "INPUT_MANIFESTS": "deploy/rbac\n'dir with space'\n",
        "INPUT_SA": "sky-sa",
        "INPUT_NAMESPACE": " ml ",
        "INPUT_FEATURES": "ingress, object-store-mounting\nvolumes",
        "INPUT_FAIL_ON": "optional",
        "INPUT_OUTPUT": "sarif",
        "INPUT_OUTPUT_FILE": "out.sarif",
        "INPUT_SKYPILOT_VERSION": "",
        "INPUT_ARGS": "--profile docs",
    }
    request = parse_check_args(check_args(env, kubeconfig="/tmp/k"))
    assert request.manifests == ("deploy/rbac", "dir with space")
    assert (request.sa, request.namespace, request.fail_on) == ("sky-sa", "ml", "optional")
    assert request.features == ("ingress", "object-store-mounting", "volumes")
    assert request.output == "sarif" and request.output_file == Path("out.sarif")
    assert request.skypilot_version is None and request.profile == "docs"
    assert request.kubeconfig == "/tmp/k"


def test_all_features_and_contexts():
    request = parse_check_args(
        check_args({"INPUT_FEATURES": "all", "INPUT_CONTEXT": "dev prod"}, kubeconfig=None)
    )
    assert request.all_features and request.contexts == ("dev", "prod")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INPUT_ARGS": "--sa 'unterminated"}, "input args: No closing quotation"),
        ({"INPUT_ARGS": "rules"}, "unexpected argument 'rules'"),
        ({"INPUT_ARGS": "--no-such-flag"}, "No such option: --no-such-flag"),
        ({"INPUT_OUTPUT": "pdf"}, "--output must be one of"),
    ],
)
def test_bad_inputs_are_usage_errors(env, message):
    with pytest.raises(UsageError, match=message):
        parse_check_args(check_args(env, kubeconfig=None))


def test_path_flags_are_paths_as_the_check_command_makes_them():
    """Parsing alone (without the command's callback) still gives Paths: typer below 0.29
    converts them only in the callback, and the writers call ``Path`` methods."""
    flags = ["--manifests", "m.yaml", "--sa", "a", "-n", "d", "--output-file", "o.json"]
    request = parse_check_args([*flags, "--fix", "f.yaml", "--sky-config", "c.yaml"])
    assert request.output_file == Path("o.json") and isinstance(request.output_file, Path)
    assert isinstance(request.fix_path, Path) and isinstance(request.sky_config, Path)

"""One error hierarchy for skycheck.

Every error a user can cause or meet carries the exit code it maps to and a
one-line message; the CLI catches ``SkycheckError`` once and prints that line.
Messages must never contain credentials: callers build them from names and
paths, never from kubeconfig values.
"""

from __future__ import annotations


class ExitCode:
    """Process exit codes (DESIGN.md section 3). Distinct on purpose."""

    OK = 0
    MISSING = 1
    USAGE = 2
    UNDECIDED = 3


class SkycheckError(Exception):
    """Base class: a message for humans and the exit code it maps to."""

    exit_code: int = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message as a single line, with the remediation hint appended."""
        text = " ".join(self.message.split())
        if self.hint:
            text += f" ({' '.join(self.hint.split())})"
        return text


class UsageError(SkycheckError):
    """Bad flags or flag combinations."""

    exit_code = ExitCode.USAGE


class InputError(SkycheckError):
    """A file we were given (rules, manifests, kubeconfig, sky config) is malformed."""

    exit_code = ExitCode.USAGE

    def __init__(self, source: str, where: str, problem: str, *, hint: str | None = None) -> None:
        place = f"{source}: {where}" if where else source
        super().__init__(f"{place}: {problem}", hint=hint)
        self.source = source
        self.where = where
        self.problem = problem


class CatalogueError(InputError):
    """The rule catalogue (rules/*.yaml) is invalid."""


class ManifestError(InputError):
    """An RBAC manifest given to --manifests is malformed."""


class ConfigError(InputError):
    """A kubeconfig or ~/.sky/config.yaml is malformed or names something missing."""


class UndecidedError(SkycheckError):
    """skycheck could not decide: cluster unreachable, not allowed to ask, timeouts."""

    exit_code = ExitCode.UNDECIDED

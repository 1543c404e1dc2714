"""One-line error output, shared by the CLI, ``skycheck watch`` and the GitHub Action.

Every error a user sees is one line on stderr, with secrets redacted and control and bidi
characters escaped; a bug is one line too (a traceback without locals only with --debug).
"""

from __future__ import annotations

import sys

from skycheck.errors import ExitCode


def fail(message: str, code: int) -> int:
    """Write one error line to stderr and return ``code``."""
    from skycheck.secrets import redact

    # Messages quote names from input files: escape control and bidi characters so a
    # manifest cannot move the cursor, recolour or reorder the terminal line.
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in redact(message))
    sys.stderr.write(f"skycheck: error: {line}\n")
    return code


def internal_error(exc: BaseException, debug: bool) -> int:
    """A bug: one redacted line (a traceback without locals only with --debug), exit 3."""
    from skycheck.secrets import redact

    if debug:
        import traceback

        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(redact(text))
    # Redact before cutting to length: a cut secret no longer matches its redaction.
    first = redact(str(exc)).splitlines()[0] if str(exc) else ""
    return fail(f"internal error: {type(exc).__name__}: {first}"[:400], ExitCode.UNDECIDED)

"""Keep credentials out of every line skycheck prints.

Kubeconfig tokens, passwords and key data are registered here when a
kubeconfig is read; every error, warning and report passes through
``redact`` before it is written anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable

_KNOWN: set[str] = set()
MASK = "[REDACTED]"


def register(values: Iterable[str]) -> None:
    """Remember secret values (short strings are ignored: they would mask words)."""
    _KNOWN.update(v for v in values if isinstance(v, str) and len(v) >= 4)


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """Replace every known secret in ``text``, longest first."""
    for secret in sorted(_KNOWN.union(extra), key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text

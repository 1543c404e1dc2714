"""Generate the docs pages that come from code and data.

docs/catalogue.md comes from rules/ and docs/cli.md from the typer app.
``--check`` fails (exit 1) when a committed page differs from what would be
generated, so CI catches a rules change without a docs update.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pages() -> dict[Path, str]:
    from skycheck.catalogue import load_catalogue
    from skycheck.cli_docs import cli_reference
    from skycheck.rules_view import render_markdown

    return {
        ROOT / "docs" / "catalogue.md": render_markdown(load_catalogue()),
        ROOT / "docs" / "cli.md": cli_reference(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a page is out of date")
    args = parser.parse_args()
    stale = []
    for path, text in pages().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path.relative_to(ROOT))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        names = ", ".join(map(str, stale))
        print(f"out of date: {names}; run python scripts/gen_docs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

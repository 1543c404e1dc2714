"""Allow ``python -m skycheck``."""

from skycheck.cli import main

if __name__ == "__main__":
    main()

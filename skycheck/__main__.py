"""Allow ``python -m skycheck``."""

from skycheck.fastargv import main

if __name__ == "__main__":
    main()

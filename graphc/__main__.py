"""`python -m graphc`: the command line (see graphc/cli.py)."""

from graphc.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

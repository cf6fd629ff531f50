"""`python -m o2oloop …` is the `o2oloop` command: the worker starts its analysis this way."""

from o2oloop.cli import app

if __name__ == "__main__":
    app()

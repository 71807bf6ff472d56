"""moodtune_cli: the ``moodtune`` console script, an HTTP and AWS client of the moodtune library."""

from moodtune_cli.app import main

__all__ = ["main"]

"""moodtune: song recommendations from the feeling in a short Korean text."""

__version__ = "0.1.0"

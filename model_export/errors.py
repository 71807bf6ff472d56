"""One error type for the export-time tools, and the CLI wrapper that turns it into one clear line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence


class ModelExportError(Exception):
    """Bad input or a refused export; the message names the file and what to do."""


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a CLI ``main``; print a ModelExportError as ``error: ...`` and exit 2 instead of a traceback."""
    try:
        return main(argv)
    except ModelExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class _CurrentStderr(logging.Handler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def setup_logging() -> None:
    """INFO messages of model_export on stderr, once; other libraries stay at WARNING."""
    logger = logging.getLogger("model_export")
    logger.setLevel(logging.INFO)
    if not any(isinstance(h, _CurrentStderr) for h in logger.handlers):
        logger.addHandler(_CurrentStderr())
        logger.propagate = False

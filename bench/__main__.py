"""Run every benchmark module present (or the ones named): ``python -m bench [model serving ...]``."""

from __future__ import annotations

import importlib
import importlib.util
import sys

MODULES = ("model", "serving", "ingest", "catalog")


def main(argv: list[str] | None = None) -> int:
    names = (sys.argv[1:] if argv is None else argv) or list(MODULES)
    status = 0
    for name in names:
        if importlib.util.find_spec(f"bench.{name}") is None:
            if name in (sys.argv[1:] if argv is None else argv):
                print(f"bench.{name}: no such benchmark", file=sys.stderr)
                status = 2
            continue
        print(f"\n## bench.{name}\n", flush=True)
        status = max(status, importlib.import_module(f"bench.{name}").main([]) or 0)
    return status


if __name__ == "__main__":
    raise SystemExit(main())

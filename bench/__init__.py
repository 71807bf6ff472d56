"""Benchmarks: each module prints markdown tables with ratios against a baseline measured in the same run."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
DEMO_BUNDLE = ROOT / "models" / "demo"
REGION = "ap-northeast-2"

# Run as `python -m bench.X` from the repository: the handlers (functions/) import as packages.
for _entry in (ROOT / "layers" / "shared", ROOT / "functions", ROOT):
    if str(_entry) not in sys.path:
        sys.path.insert(0, str(_entry))

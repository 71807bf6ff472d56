"""What the lexical head costs a request: a text in, probabilities out, with and without the head.

    python -m bench.lexical [--bundle models/demo] [--repeats 30] [--threads 1]

Both paths run in the same process on the same texts (the reference and mixed reference sets),
interleaved: the bundle's classifier as shipped (normalise, tokenize, lexical features, INT8 graph,
fusion, softmax) against the same graph with the head left out. Prints a table of medians and p95 (ms)
and the ratio of the two medians; no assertion, the figures are for docs/model.md §2c.
"""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from moodtune.emotion.classifier import EmotionClassifier

SETS = (Path("data/demo/reference.tsv"), Path("data/demo/reference_mixed.tsv"))


def texts() -> list[str]:
    """The reference texts (label<TAB>text files with a header)."""
    out = []
    for path in SETS:
        with path.open(encoding="utf-8") as f:
            out += [row["text"] for row in csv.DictReader(f, delimiter="\t")]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.lexical", description=__doc__.split("\n")[0])
    p.add_argument("--bundle", type=Path, default=Path("models/demo"))
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    served = EmotionClassifier.from_bundle(args.bundle, threads=args.threads)
    if served.lexical is None:
        print(f"{args.bundle} has no lexical head: nothing to compare")
        return 1
    # The same session and tokenizer, the head left out (a bundle without calibration.lexical).
    graph_only = EmotionClassifier(
        replace(served.bundle, lexical_weight=None), served.session, served.tokenizer
    )
    sample = texts()
    times: dict[str, list[float]] = {
        "with the lexical head": [],
        "graph alone": [],
        "lexical features + sum": [],
    }
    for text in sample[:20]:  # warm-up
        served.predict_one(text)
        graph_only.predict_one(text)
    for _ in range(args.repeats):
        for text in sample:
            for name, run in (
                ("with the lexical head", served.predict_one),
                ("graph alone", graph_only.predict_one),
                ("lexical features + sum", lambda t: served.lexical.logits([t])),
            ):
                start = time.perf_counter()
                run(text)
                times[name].append((time.perf_counter() - start) * 1000)
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if "model name" in line
            ),
            "?",
        )
        if Path("/proc/cpuinfo").is_file()
        else "?"
    )
    print(f"{len(sample)} texts × {args.repeats}, batch 1, {args.threads} thread(s), {cpu}")
    print(f"{'path':<26} {'p50 ms':>8} {'p95 ms':>8}")
    for name, values in times.items():
        print(f"{name:<26} {np.percentile(values, 50):8.3f} {np.percentile(values, 95):8.3f}")
    ratio = np.percentile(times["with the lexical head"], 50) / np.percentile(times["graph alone"], 50)
    print(f"ratio of medians, with / without the head: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

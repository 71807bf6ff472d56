"""``python -m infra.local.fuzz`` (``make fuzz``): schemathesis against the local stack, from the served
``/v1/openapi.json``.

Starts the local stack (``python -m infra.local.stack``) on free loopback ports with route throttling
off (the fuzzer tests the functions, not the HTTP API's throttle, which tests/unit/infra/test_front.py
covers), runs ``schemathesis run`` with every check and every phase (examples, coverage, fuzzing, and the
stateful phase, which follows the document's links from a recommendation to its feedback and its songs),
seeded, with ``tests/fuzz/schemathesis.toml`` and the check of ``tests/fuzz/hooks.py``, then stops the
stack. The document is read from the running stack, so a new route is fuzzed without a change here.
Exit status: schemathesis' (0: no failure). Only 127.0.0.1 is ever reached.

schemathesis is a test tool (pyproject's dev extra): it runs as its own command, never imported here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from infra.local.front import ROOT
from infra.local.stack import child_stack

FUZZ_DIR = ROOT / "tests" / "fuzz"


def schemathesis_command(
    url: str, *, max_examples: int, seed: int, max_time_s: int | None, report_dir: Path | None
) -> list[str]:
    """The ``schemathesis run`` command line for the stack at ``url``."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(FUZZ_DIR / "schemathesis.toml"),
        "--no-color",
        "run",
        f"{url}/v1/openapi.json",
        "--checks",
        "all",
        # Replaced by tests/fuzz/hooks.py's check: the HTTP API answers 404, not 405 (see there).
        "--exclude-checks",
        "unsupported_method",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--suppress-health-check",
        "too_slow",
    ]
    if max_time_s:
        command += ["--max-time", str(max_time_s)]
    if report_dir is not None:
        command += ["--report", "junit", "--report-dir", str(report_dir)]
    return command


def fuzz(
    *,
    max_examples: int,
    seed: int,
    max_time_s: int | None = None,
    report_dir: Path | None = None,
    timeout_s: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Start the stack, run schemathesis against it (output captured), stop the stack. schemathesis
    runs in a temporary directory: its crash cache (.schemathesis/) never lands in the tree."""
    with child_stack() as stack, tempfile.TemporaryDirectory(prefix="moodtune-fuzz-") as workdir:
        env = {**os.environ, "SCHEMATHESIS_HOOKS": str(FUZZ_DIR / "hooks.py")}
        command = schemathesis_command(
            stack.api_url, max_examples=max_examples, seed=seed, max_time_s=max_time_s, report_dir=report_dir
        )
        return subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )


def main(argv: list[str] | None = None) -> int:
    """Run the fuzzer once and print its report; its exit status is schemathesis'."""
    parser = argparse.ArgumentParser(prog="python -m infra.local.fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--max-examples", type=int, default=100, help="test cases per operation and phase")
    parser.add_argument("--seed", type=int, default=15, help="hypothesis seed (the same run again)")
    parser.add_argument("--max-time", type=int, default=None, help="seconds for the whole run (optional)")
    parser.add_argument("--report-dir", type=Path, default=None, help="write a JUnit report there")
    args = parser.parse_args(argv)
    done = fuzz(
        max_examples=args.max_examples, seed=args.seed, max_time_s=args.max_time, report_dir=args.report_dir
    )
    print(done.stdout, end="")
    print(done.stderr, end="", file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())

"""schemathesis against the local stack from its served /v1/openapi.json, at the size that fits the suite
(`make fuzz` runs the larger one): every check, every phase, the stateful phase on the document's links
(recommend -> feedback, recommend -> song), seeded so that a failure can be replayed."""

from __future__ import annotations

import pytest

from infra.local.fuzz import fuzz

pytestmark = pytest.mark.integration

# ~40 s of fuzzing on 2 shared cores after ~20 s of stack start; `make fuzz` runs 100 per operation.
MAX_EXAMPLES = 50
SEED = 15


@pytest.mark.timeout(600)
def test_the_api_passes_every_schemathesis_check_and_the_stateful_phase() -> None:
    done = fuzz(max_examples=MAX_EXAMPLES, seed=SEED, timeout_s=540)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-12000:]
    assert "API Links:    2 covered / 2 selected / 2 total" in report, report[-4000:]
    assert "Stateful" in report and " failed" not in report.split("SUMMARY")[0], report[-4000:]

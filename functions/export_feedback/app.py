"""ExportFeedbackFunction: FeedbackTable's feedback to S3 as gzip JSONL, one object per day.

Started by an EventBridge Scheduler schedule with ``{}`` (export every day after the watermark up to
today, at most EXPORT_MAX_DAYS_PER_RUN days a run; after an outage it runs window after window while
the invocation has time left, each moving the watermark), or by hand with
``{"since": "YYYY-MM-DD", "until": "YYYY-MM-DD"}`` (those days; ``until`` defaults to today). The logic
and its exactly-once reasoning live in ``moodtune.feedback.export``.
"""

from __future__ import annotations

import os
import time
from datetime import date
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import utils
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from moodtune.feedback.export import ExportError, ExportResult, FeedbackExporter, exporter_from_env

logger = Logger(service=os.getenv("POWERTOOLS_SERVICE_NAME", "moodtune"))
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "MoodTune"))
tracer = Tracer()
utils.copy_config_to_registered_loggers(source_logger=logger, include={"moodtune"})


class ExportRequest(BaseModel):
    """The invocation event: empty for the scheduled run, or a range of days to export again."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    since: date | None = None
    until: date | None = None

    @model_validator(mode="after")
    def _until_needs_since(self) -> ExportRequest:
        if self.until is not None and self.since is None:
            raise ValueError("'until' needs 'since'")
        return self


_exporter: FeedbackExporter | None = None
# Another catch-up window starts only if this much time would be left after one as long as the longest.
_MARGIN_MS = 30_000


def get_exporter() -> FeedbackExporter:
    """The exporter of this execution environment (boto3 clients made once)."""
    global _exporter
    if _exporter is None:
        _exporter = exporter_from_env()
    return _exporter


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any] | None, context: LambdaContext) -> dict[str, Any]:
    """Run one export; returns its summary. A bad event raises ExportError with a one-line reason."""
    try:
        request = ExportRequest.model_validate(event or {})
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in exc.errors())
        raise ExportError(f"bad export request ({details})") from None
    exporter = get_exporter()
    if request.since is None:
        result = export_while_time_left(exporter, context)
    else:
        result = exporter.export_days(request.since, request.until)
    metrics.add_metric(name="FeedbackExported", unit=MetricUnit.Count, value=result.fresh)
    metrics.add_metric(name="FeedbackRejected", unit=MetricUnit.Count, value=result.rejected)
    metrics.add_metric(
        name="ExportDaysWritten", unit=MetricUnit.Count, value=sum(d.written for d in result.days)
    )
    summary = result.summary()
    logger.info("feedback exported", extra={k: v for k, v in summary.items() if k != "days"})
    return summary


def export_while_time_left(exporter: FeedbackExporter, context: LambdaContext) -> ExportResult:
    """Scheduled runs, one window after another, while days are pending and time is left for one more."""
    results: list[ExportResult] = []
    longest_ms = 0.0
    while not results or (
        results[-1].more and context.get_remaining_time_in_millis() > 2 * longest_ms + _MARGIN_MS
    ):
        started = time.monotonic()
        results.append(exporter.export_pending())
        longest_ms = max(longest_ms, (time.monotonic() - started) * 1000)
    return ExportResult.combine(results)

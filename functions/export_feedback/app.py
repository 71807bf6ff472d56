"""ExportFeedbackFunction: FeedbackTable's feedback to S3 as gzip JSONL, one object per day.

Started by an EventBridge Scheduler schedule with ``{}`` (export every day after the watermark up to
today), or by hand with ``{"since": "YYYY-MM-DD", "until": "YYYY-MM-DD"}`` (those days; ``until``
defaults to today). The logic and its exactly-once reasoning live in ``moodtune.feedback_export``.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import utils
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from moodtune.feedback_export import ExportError, FeedbackExporter, exporter_from_env

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
        result = exporter.export_pending()
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

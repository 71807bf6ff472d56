"""IngestSplitterFunction: a catalog file uploaded to the catalog bucket -> SQS messages of songs.

Thin on purpose: stream the object, let moodtune.catalog.fanout check every line and pack the valid songs into
messages, send them to the ingest queue. Bad lines are logged with their line number and field (never
their lyrics) and counted; they do not stop the file.
"""

import os
import warnings
from functools import cache
from typing import Any
from urllib.parse import unquote_plus

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import utils
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from moodtune.catalog.fanout import SqsSender, split_catalog
from moodtune.catalog.ingest import IngestSettings, capped_lines

logger = Logger(service=os.getenv("POWERTOOLS_SERVICE_NAME", "moodtune"))
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "MoodTune"))
tracer = Tracer()
utils.copy_config_to_registered_loggers(source_logger=logger, include={"moodtune"})
warnings.filterwarnings("ignore", message="No application metrics to publish")

# At most this many rejected lines are logged one by one per file; the count is always logged.
LOGGED_REJECTS = 100


@cache
def _clients() -> tuple[Any, Any]:
    return boto3.client("s3"), boto3.client("sqs")


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    settings = IngestSettings()
    if not settings.queue_url:
        raise RuntimeError("INGEST_QUEUE_URL is not set")
    s3, sqs = _clients()
    files = []
    for record in event.records:
        bucket = record.s3.bucket.name
        key = unquote_plus(record.s3.get_object.key)
        version = record.s3.get_object.version_id
        source = f"s3://{bucket}/{key}"
        # CatalogBucket is versioned: read the version this event is about, not whatever is newest now
        # (two quick uploads to one key would otherwise both split the second file).
        request = {"Bucket": bucket, "Key": key, **({"VersionId": version} if version else {})}
        body = s3.get_object(**request)["Body"]
        sender = SqsSender(sqs, settings.queue_url)
        report = split_catalog(
            capped_lines(body.iter_chunks(1 << 20)),
            source,
            sender.send,
            songs_per_message=settings.songs_per_message,
            max_lyrics_bytes=settings.max_lyrics_bytes,
        )
        for rejected in report.rejected[:LOGGED_REJECTS]:
            logger.warning("catalog line skipped", extra={"source": source, **rejected.as_dict()})
        logger.info(
            "catalog split",
            extra={
                "source": source,
                "version_id": version,
                "songs": report.songs,
                "messages": report.messages,
                "skipped": len(report.rejected),
            },
        )
        metrics.add_metric(name="CatalogSongsQueued", unit=MetricUnit.Count, value=report.songs)
        metrics.add_metric(name="CatalogLinesSkipped", unit=MetricUnit.Count, value=len(report.rejected))
        summary = report.as_dict()
        summary["rejected"] = summary["rejected"][:LOGGED_REJECTS]
        files.append(summary)
    return {"files": files}

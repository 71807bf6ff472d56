"""IngestFunction: SQS messages of songs -> scored with the image's bundle -> SongsTable.

Thin on purpose: Powertools' batch utility hands each SQS record to ``record_handler`` and reports the
records that raised as batch item failures, so only those return to the queue (and, after the queue's
maxReceiveCount, go to the dead-letter queue); the others are deleted. A record fails when its body is
not an ingestion message or a write still fails after retries; a bad song inside a good message is
skipped and logged, like a bad catalog line.
"""

import os
import warnings
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import utils
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from moodtune.catalog.fanout import parse_message
from moodtune.catalog.ingest import IngestSettings, SongScorer, ingest_entries
from moodtune.emotion.classifier import EmotionClassifier
from moodtune.settings import get_settings

logger = Logger(service=os.getenv("POWERTOOLS_SERVICE_NAME", "moodtune"))
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "MoodTune"))
tracer = Tracer()
utils.copy_config_to_registered_loggers(source_logger=logger, include={"moodtune"})
warnings.filterwarnings("ignore", message="No application metrics to publish")

processor = BatchProcessor(event_type=EventType.SQS)


@cache
def _pipeline() -> tuple[SongScorer, Any, IngestSettings]:
    """The scorer (the image's bundle), SongsTable and the ingest settings, once per environment."""
    settings, ingest = get_settings(), IngestSettings()
    classifier = EmotionClassifier.from_bundle(settings.model_dir, threads=settings.ort_intra_op_threads)
    scorer = SongScorer(classifier, ingest.lyrics_options(classifier.lines_per_chunk), ingest.batch_size)
    table = boto3.resource("dynamodb").Table(settings.songs_table)
    return scorer, table, ingest


@tracer.capture_method
def record_handler(record: SQSRecord) -> dict[str, Any]:
    """Score and write the songs of one message; raise to report this record alone as failed."""
    scorer, table, settings = _pipeline()
    source, parsed = parse_message(record.body, settings.max_lyrics_bytes)
    report = ingest_entries(scorer, table, parsed, group_songs=len(parsed))
    for rejected in report.rejected:
        logger.warning("song skipped", extra={"source": source, **rejected.as_dict()})
    metrics.add_metric(name="SongsWritten", unit=MetricUnit.Count, value=report.written)
    metrics.add_metric(name="SongsUnchanged", unit=MetricUnit.Count, value=report.unchanged)
    metrics.add_metric(name="SongsSkipped", unit=MetricUnit.Count, value=report.skipped)
    metrics.add_metric(name="ChunksScored", unit=MetricUnit.Count, value=report.chunks)
    logger.info(
        "message ingested",
        extra={
            "source": source,
            "model_version": report.model_version,
            "written": report.written,
            "unchanged": report.unchanged,
            "skipped": report.skipped,
            "chunks": report.chunks,
        },
    )
    return {"written": report.written, "unchanged": report.unchanged, "skipped": report.skipped}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )

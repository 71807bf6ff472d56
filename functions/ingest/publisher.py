"""CatalogPublisherFunction: SongsTable -> the catalog snapshot that RecommendFunction serves.

Thin on purpose: on its schedule (or invoked by hand with ``{"force": true}``) it publishes the
snapshot of the model version of the image's bundle (the one the ingest workers score with), once
the ingest queue is drained; moodtune.catalog.publish does the work. Unchanged catalogs write
nothing. A failure raises: the function's Errors raise CatalogPublishFailedAlarm, the previous
pointer stays in place (files are written first, the pointer last), and the next run retries.
"""

import os
import warnings
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import utils
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from moodtune.catalog.objects import S3Objects
from moodtune.catalog.publish import PublishReport, pending_messages, publish_catalog
from moodtune.emotion.bundle import load_bundle
from moodtune.settings import get_settings

logger = Logger(service=os.getenv("POWERTOOLS_SERVICE_NAME", "moodtune"))
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "MoodTune"))
tracer = Tracer()
utils.copy_config_to_registered_loggers(source_logger=logger, include={"moodtune"})
warnings.filterwarnings("ignore", message="No application metrics to publish")


@cache
def _model_version() -> str:
    return load_bundle(get_settings().model_dir).model_version


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    model_version = _model_version()
    queue_url = os.environ.get("INGEST_QUEUE_URL", "")
    if queue_url and not (isinstance(event, dict) and event.get("force") is True):
        pending = pending_messages(boto3.client("sqs"), queue_url)
        if pending:
            logger.info("ingestion in progress: not publishing", extra={"pending_messages": pending})
            return PublishReport(model_version, skipped=f"{pending} ingest messages pending").as_dict()
    table = boto3.resource("dynamodb").Table(settings.songs_table)
    objects = S3Objects(boto3.client("s3"), settings.snapshot_bucket)
    report = publish_catalog(table, objects, model_version)
    metrics.add_dimension(name="model_version", value=model_version)
    metrics.add_metric(name="CatalogSnapshotsPublished", unit=MetricUnit.Count, value=int(report.published))
    metrics.add_metric(name="CatalogSnapshotSongs", unit=MetricUnit.Count, value=report.songs)
    return report.as_dict()

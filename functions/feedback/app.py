"""FeedbackFunction: record whether a recommended song fit (POST /v1/recommendations/{id}/feedback).

Thin on purpose: parse the request, one conditional UpdateItem through moodtune.feedback.records, shape the
answer. No model here: this zip function carries only the shared layer.
"""

import os
import warnings
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths, utils
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from moodtune import service
from moodtune.http.resolver import MoodtuneResolver, json_response, log_json, log_message, route_responses
from moodtune.http.schemas import FeedbackRequest, FeedbackResponse

logger = Logger(
    service=os.getenv("POWERTOOLS_SERVICE_NAME", "moodtune"),
    json_serializer=log_json,
    json_deserializer=log_message,
)
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "MoodTune"))
tracer = Tracer()
utils.copy_config_to_registered_loggers(source_logger=logger, include={"moodtune"})
# Routes such as health publish no metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish")

app = MoodtuneResolver()
# The routes return a Response but carry no return annotation: Powertools would validate and
# re-serialize the answer for it (see moodtune.http.resolver.json_response); responses= documents the schema.

RecommendationId = Annotated[
    str, Path(min_length=1, max_length=64, description="the recommendation_id of a recommendation")
]


@app.post(
    "/v1/recommendations/<recommendation_id>/feedback",
    summary="Say whether a recommended song fit",
    operation_id="submit_feedback",
    responses=route_responses(
        200,
        "The feedback as recorded (sending it again overwrites it)",
        FeedbackResponse,
        400,
        404,
        413,
        415,
        422,
        503,
    ),
)
def submit_feedback(recommendation_id: RecommendationId, body: FeedbackRequest):
    result = service.get_store().apply_feedback(
        recommendation_id, body.song_id, body.satisfied, now=datetime.now(UTC)
    )
    metrics.add_dimension(name="satisfied", value=str(result.satisfied).lower())
    metrics.add_dimension(name="model_version", value=result.model_version)
    metrics.add_metric(name="Feedback", unit=MetricUnit.Count, value=1)
    logger.info(
        "feedback recorded",
        extra={"recommendation_id": recommendation_id, "song_id": body.song_id, "satisfied": body.satisfied},
    )
    answer = FeedbackResponse(
        recommendation_id=result.recommendation_id,
        song_id=result.song_id,
        satisfied=result.satisfied,
        recorded_at=result.at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )
    return json_response(200, answer)


service.get_store()  # boto3 session and client at init, not on the first request


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway HTTP API (payload 2.0) entry point."""
    return app.resolve(event, context)

"""RecommendFunction: classify a text, recommend songs, look up songs, health, and the OpenAPI document.

Thin on purpose: parse the request (Powertools + moodtune.http.schemas), call moodtune, shape the answer.
The model session and the catalog load at import time, which is Lambda's init phase.
"""

import importlib.util
import json
import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.logging import correlation_paths, utils
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from moodtune import __version__, service
from moodtune.http.resolver import (
    ERROR_DOCS,
    MoodtuneResolver,
    error_doc,
    json_response,
    log_json,
    log_message,
    route_responses,
    tidy_openapi,
)
from moodtune.http.schemas import (
    SONG_ID_MAX_CHARS,
    EmotionRequest,
    EmotionResponse,
    HealthResponse,
    JourneyRequest,
    JourneyResponse,
    RecommendationRequest,
    RecommendationResponse,
    SongResponse,
)
from moodtune.labels import LABELS

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

API_DESCRIPTION = (
    "Song recommendations from the feeling in a short Korean text. Every error answer is "
    '`{"message": ..., "errors"?: [...]}`. Besides the statuses each operation lists, a path asked '
    "with a method it does not serve answers 405 with an `Allow` header when the function is "
    "invoked directly; through the HTTP API, which routes only the operations below, it is 404 "
    '`{"message": "Not Found"}`, whatever the method. A body over the HTTP API\'s 10 MB is refused '
    "by the HTTP API with 413; any body over 16 KB is answered 413 (see each operation)."
)


def _server_timing(timings_ms: dict[str, float]) -> str:
    return ", ".join(f"{name};dur={ms:.2f}" for name, ms in timings_ms.items())


# What a client (and the fuzzer's stateful phase) does with a recommendation: rate one of its songs,
# look a song up. operationIds are set on those routes so that these links name them.
RECOMMENDATION_LINKS = {
    "SubmitFeedback": {
        "operationId": "submit_feedback",
        "parameters": {"recommendation_id": "$response.body#/recommendation_id"},
        "requestBody": {"song_id": "$response.body#/songs/0/song_id", "satisfied": True},
        "description": "Say whether the first song fit",
    },
    "GetSong": {
        "operationId": "get_song",
        "parameters": {"song_id": "$response.body#/songs/0/song_id"},
        "description": "The first song, with its emotion scores",
    },
}


def _count(name: str, classification: service.Classification) -> None:
    """One answer of ``name`` and the classifier's latency, by model version."""
    metrics.add_dimension(name="model_version", value=classification.model_version)
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    metrics.add_metric(
        name="ClassifierLatency",
        unit=MetricUnit.Milliseconds,
        value=classification.tokenize_ms + classification.inference_ms,
    )


@app.post(
    "/v1/recommendations",
    summary="Recommend songs for the feeling of a text",
    status_code=201,
    responses=route_responses(
        201,
        "The recommendation, stored so that feedback can refer to it",
        RecommendationResponse,
        400,
        413,
        415,
        422,
        503,
        links=RECOMMENDATION_LINKS,
    ),
)
def create_recommendation(body: RecommendationRequest):
    result = service.get_recommend_service().recommend(
        body.text,
        limit=body.limit,
        mode=body.mode,
        exclude=body.exclude,
        metric=body.metric,
        mmr_lambda=float(body.mmr_lambda),
        artist_spread=body.artist_spread,
    )
    classification = result.classification
    _count("Recommendations", classification)
    logger.info(
        "recommendation made",
        extra={
            "recommendation_id": result.record.recommendation_id,
            "mode": body.mode,
            "dominant": classification.dominant,
            "songs": len(result.matches),
            "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()},
        },
    )
    # One validation of the whole answer (pydantic-core, in one call); each song's fixed part is
    # computed once per catalog (ScoredSong.answer_fields).
    answer = RecommendationResponse.model_validate(
        {
            "recommendation_id": result.record.recommendation_id,
            "model_version": classification.model_version,
            "mode": body.mode,
            "metric": body.metric,
            "emotion": {"dominant": classification.dominant, "scores": classification.scores_by_label},
            "songs": [
                {
                    **m.song.answer_fields,
                    "similarity": m.similarity,
                    "explanation": m.explanation.as_dict(),
                }
                for m in result.matches
            ],
        }
    )
    return json_response(201, answer, headers={"Server-Timing": _server_timing(result.timings_ms)})


_JOURNEY_RESPONSES = route_responses(
    201,
    "The journey, stored as a recommendation so that feedback can refer to its songs",
    JourneyResponse,
    400,
    413,
    415,
    422,
    503,
)
_JOURNEY_RESPONSES[422] = error_doc(
    "The request is well formed but cannot be served: too few songs left for the length "
    "(errors[].loc names length or exclude)"
)


@app.post(
    "/v1/journeys",
    summary="Songs from the mood of a text, step by step, toward the mood you want (the iso principle)",
    status_code=201,
    responses=_JOURNEY_RESPONSES,
)
def create_journey(body: JourneyRequest):
    result = service.get_recommend_service().journey(
        body.text,
        body.target_value,
        length=body.length,
        exclude=body.exclude,
        metric=body.metric,
        target_field="target" if body.target is not None else "target_scores",
    )
    classification, journey = result.classification, result.journey
    _count("Journeys", classification)
    logger.info(
        "journey made",
        extra={
            "recommendation_id": result.record.recommendation_id,
            "kind": "journey",
            "dominant": classification.dominant,
            "steps": len(journey.steps),
            "reachable": journey.reachable,
            "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()},
        },
    )
    answer = JourneyResponse.model_validate(
        {
            "journey_id": result.record.recommendation_id,
            "model_version": classification.model_version,
            "metric": journey.metric,
            "emotion": {"dominant": classification.dominant, "scores": classification.scores_by_label},
            "target": {"scores": dict(zip(LABELS, journey.target, strict=True))},
            "reachable": journey.reachable,
            "stay": journey.stay,
            "tolerance": journey.tolerance,
            "largest_step": journey.largest_step,
            "steps": [
                {
                    "step": i,
                    "song": s.song.answer_fields,
                    "waypoint": {"scores": dict(zip(LABELS, s.waypoint, strict=True))},
                    "similarity": s.similarity,
                    "target_similarity": s.target_similarity,
                }
                for i, s in enumerate(journey.steps)
            ],
        }
    )
    return json_response(201, answer, headers={"Server-Timing": _server_timing(result.timings_ms)})


@app.post(
    "/v1/emotions",
    summary="Classify the emotion of a text",
    responses=route_responses(
        200, "The emotion distribution of the text", EmotionResponse, 400, 413, 415, 422
    ),
)
def classify(body: EmotionRequest):
    classification = service.get_recommend_service().classify(body.text)
    metrics.add_dimension(name="model_version", value=classification.model_version)
    metrics.add_metric(
        name="ClassifierLatency",
        unit=MetricUnit.Milliseconds,
        value=classification.tokenize_ms + classification.inference_ms,
    )
    answer = EmotionResponse(
        dominant=classification.dominant,
        scores=classification.scores_by_label,
        model_version=classification.model_version,
    )
    return json_response(200, answer)


@app.get(
    "/v1/songs/<song_id>",
    summary="One song of the catalog with its emotion scores",
    operation_id="get_song",
    responses=route_responses(200, "The song", SongResponse, 400, 404, 503),
)
def get_song(
    song_id: Annotated[str, PathParam(min_length=1, max_length=SONG_ID_MAX_CHARS)],
):
    recommend_service = service.get_recommend_service()
    song = recommend_service.song(song_id)
    if song is None:
        raise ServiceError(404, f"no song {song_id!r} in the catalog of {recommend_service.model_version}")
    answer = SongResponse(
        **song.answer_fields,
        album=song.album,
        year=song.year,
        genre=song.genre,
        chunks=song.chunks,
        model_version=recommend_service.model_version,
    )
    return json_response(200, answer)


@app.get(
    "/v1/health",
    summary="Model version and catalog size",
    responses=route_responses(
        200, "Serving; status is degraded while the catalog is empty", HealthResponse, 503
    ),
)
def health():
    recommend_service = service.get_recommend_service()
    size = len(recommend_service.catalog())
    answer = HealthResponse(
        status="ok" if size else "degraded",
        model_version=recommend_service.model_version,
        catalog_size=size,
    )
    return json_response(200, answer)


# The feedback route belongs to FeedbackFunction; its handler file is merged into this function's
# document so that one OpenAPI document covers the whole API (the image copies it beside app.py).
_FEEDBACK_HANDLER_CANDIDATES = (
    Path(__file__).resolve().parent / "feedback" / "app.py",
    Path(__file__).resolve().parent.parent / "feedback" / "app.py",
)


@lru_cache(maxsize=1)
def openapi_document() -> str:
    """The OpenAPI document of the whole API: this function's routes merged with the feedback route."""
    merge = OpenAPIMerge(title="moodtune", version=__version__, description=API_DESCRIPTION)
    merge.add_schema(app.get_openapi_schema(title="moodtune", version=__version__))
    feedback_handler = next((p for p in _FEEDBACK_HANDLER_CANDIDATES if p.is_file()), None)
    if feedback_handler is None:
        logger.warning("feedback handler not found; the OpenAPI document lacks the feedback route")
    else:
        # Loaded under its own name: in the image this module is "app" too, so OpenAPIMerge.add_file
        # (which looks resolvers up in sys.modules by file stem) would find this module instead.
        spec = importlib.util.spec_from_file_location("moodtune_feedback_handler", feedback_handler)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        merge.add_schema(module.app.get_openapi_schema(title="moodtune", version=__version__))
    return json.dumps(tidy_openapi(json.loads(merge.get_openapi_json_schema())), ensure_ascii=False)


@app.get(
    "/v1/openapi.json",
    summary="This API's OpenAPI document",
    responses={
        200: {
            "description": "The OpenAPI 3 document of the whole API (this document)",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        429: ERROR_DOCS[429],
        500: ERROR_DOCS[500],
    },
)
def openapi():
    return Response(status_code=200, content_type="application/json", body=openapi_document())


service.warm_recommend()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway HTTP API (payload 2.0) entry point."""
    return app.resolve(event, context)

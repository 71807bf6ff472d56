"""The wiring of one execution environment: classifier, catalog cache and store, built once.

Handlers call ``warm_*`` at import time (the Lambda init phase), so the model session and the catalog
are loaded before the first request; the request path only does per-request work. The feedback
function only needs the store: numpy, the catalog and the classifier (onnxruntime) are imported where
the recommend side first needs them, so the feedback function's layer ships none of them.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from moodtune.emotion.readable import read
from moodtune.errors import StoreError, StoreUnavailable, error_code, store_error
from moodtune.feedback.records import (
    RecommendationRecord,
    RecommendationStore,
    RecommendedSongRecord,
    new_recommendation_id,
)
from moodtune.labels import LABELS
from moodtune.settings import Settings, get_settings

if TYPE_CHECKING:
    import numpy as np

    from moodtune.catalog import Catalog, CatalogCache, ScoredSong
    from moodtune.emotion.classifier import EmotionClassifier
    from moodtune.recommend.journeys import Journey
    from moodtune.recommend.ranking import Match, Mode

logger = logging.getLogger(__name__)

# Timeouts and attempts sized to the functions' Timeouts (template.yaml), so that a hung or throttled
# DynamoDB is answered 503 + Retry-After by the function, not a plain 500 by Lambda timing it out.
# One call, worst case: 2 attempts x (0.5 s connect + 0.8 s read) = 2.6 s, plus one backoff: 25 ms
# after a timeout or 5xx, at most 1 s after throttling (which itself answers in milliseconds) -> 3.6 s.
# - FeedbackFunction (Timeout 5 s): one UpdateItem per request -> 503 within 3.6 s.
# - RecommendFunction (Timeout 10 s): one PutItem per request -> 503 within 3.6 s. The catalog comes
#   from its S3 snapshot (SNAPSHOT_S3_CONFIG below), refreshed beside requests (CatalogCache), never
#   on their path; only a request that finds no catalog at all (the load at init failed) reads it.
# read_timeout bounds the wait for each chunk of an answer, not a whole answer.
DYNAMODB_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 2},
    connect_timeout=0.5,
    read_timeout=0.8,
    tcp_keepalive=True,
)
# The catalog snapshot's S3 reads run at init and on the background refresh (never on a request's path,
# except a request that finds no catalog yet). A 1,000,000-song snapshot is 108 MB in two GETs; a
# read timeout bounds each chunk's wait, not the whole body. A hung S3 costs one GET at most
# 2 x (1 s + 2 s) + backoff ~ 7 s: the pointer's, or the two files' side by side. Only when the pointer
# answers slowly and then the files hang can a request without a catalog outlast the 10 s Timeout.
SNAPSHOT_S3_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 2},
    connect_timeout=1,
    read_timeout=2,
    tcp_keepalive=True,
    max_pool_connections=4,
)
# The worst case above, for the tests that hold it against template.yaml.
DYNAMODB_CALL_WORST_CASE_S = (
    DYNAMODB_CONFIG.retries["total_max_attempts"]
    * (DYNAMODB_CONFIG.connect_timeout + DYNAMODB_CONFIG.read_timeout)
    + 1.0
)


@dataclass(frozen=True)
class Classification:
    """A text's emotion distribution (label order) and how long it took."""

    scores: np.ndarray
    dominant: str
    model_version: str
    tokenize_ms: float
    inference_ms: float

    @cached_property
    def scores_by_label(self) -> dict[str, float]:
        """Label -> probability rounded to 6 places (computed once: the record and the answer use it)."""
        return {label: round(float(p), 6) for label, p in zip(LABELS, self.scores.tolist(), strict=True)}


@dataclass(frozen=True)
class RecommendationResult:
    """A recommendation as made and stored, with the time each step took (ms)."""

    record: RecommendationRecord
    classification: Classification
    matches: list[Match]
    timings_ms: dict[str, float]


@dataclass(frozen=True)
class JourneyResult:
    """A journey as planned and stored (a recommendation record of kind "journey"), with timings (ms)."""

    record: RecommendationRecord
    classification: Classification
    journey: Journey
    timings_ms: dict[str, float]


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class RecommendService:
    """Classify a text and recommend songs for it; everything the recommend function serves."""

    def __init__(
        self,
        classifier: EmotionClassifier,
        catalogs: CatalogCache,
        store: RecommendationStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        explore: float = 0.0,
        explore_seed: int | None = None,
        explore_window: int = 0,
    ) -> None:
        self.classifier = classifier
        # The exploration share (EXPLORE_SHARE), the songs below the list it draws from
        # (EXPLORE_WINDOW, 0: all) and its generator (EXPLORE_SEED: repeatable runs).
        self.explore = explore
        self.explore_window = explore_window
        self.rng = random.Random(explore_seed)
        self.catalogs = catalogs
        self.store = store
        self.clock = clock

    @property
    def model_version(self) -> str:
        return self.classifier.model_version

    def catalog(self) -> Catalog:
        """The current catalog. When none is cached and its snapshot cannot be read: ``StoreUnavailable``
        (503) if it may clear or the snapshot is missing or broken, ``StoreFailure`` (500) if S3
        refuses for a reason no retry fixes (no permission, no bucket)."""
        try:
            return self.catalogs.get()
        except StoreError as exc:  # a snapshot that cannot be served (catalog.snapshot.SnapshotError)
            logger.error("song catalog snapshot refused: %s", exc)
            raise StoreUnavailable("the song catalog is unavailable; retry later") from exc
        except (ClientError, BotoCoreError) as exc:
            logger.error("song catalog could not be loaded", extra={"error_code": error_code(exc)})
            raise store_error("the song catalog", exc) from exc

    def classify(self, text: str) -> Classification:
        """Emotion distribution of one (already validated) text; ``UnreadableText`` when it has no Korean."""
        import numpy as np  # numpy-side imports stay off the feedback path

        from moodtune.recommend.ranking import dominant_label

        reading = read(text)  # UnreadableText (422) for a text with nothing the model can read
        if reading.scores is not None:  # emoji only: the lexicon's reading (moodtune.emotion.readable)
            scores, tokenize_ms, inference_ms = np.asarray(reading.scores, dtype=np.float32), 0.0, 0.0
        else:
            start = time.perf_counter()
            encoded = self.classifier.tokenize([text])
            tokenize_ms = _ms_since(start)
            start = time.perf_counter()
            scores = self.classifier.infer(encoded)[0]
            inference_ms = _ms_since(start)
        return Classification(
            scores=scores,
            dominant=dominant_label(scores),
            model_version=self.model_version,
            tokenize_ms=tokenize_ms,
            inference_ms=inference_ms,
        )

    def recommend(
        self,
        text: str,
        *,
        limit: int = 5,
        mode: Mode = "distribution",
        exclude: Iterable[str] = (),
        metric: str | None = None,
        mmr_lambda: float | None = None,
        artist_spread: bool = True,
    ) -> RecommendationResult:
        """Classify, rank the catalog (made diverse: artist spread, MMR), and write the recommendation
        record (one PutItem). ``metric``/``mmr_lambda`` None: the defaults."""
        from moodtune.recommend.diversity import DEFAULT_MMR_LAMBDA
        from moodtune.recommend.ranking import recommend
        from moodtune.similarity import DEFAULT_METRIC

        catalog = self.catalog()
        classification = self.classify(text)
        start = time.perf_counter()
        matches = recommend(
            catalog,
            classification.scores,
            limit=limit,
            mode=mode,
            exclude=exclude,
            metric=metric or DEFAULT_METRIC,
            mmr_lambda=DEFAULT_MMR_LAMBDA if mmr_lambda is None else mmr_lambda,
            artist_spread=artist_spread,
            explore=self.explore,
            rng=self.rng,
            explore_window=self.explore_window,
        )
        similarity_ms = _ms_since(start)
        record = RecommendationRecord(
            recommendation_id=new_recommendation_id(),
            created_at=self.clock(),
            model_version=self.model_version,
            mode=mode,
            dominant=classification.dominant,
            scores=classification.scores_by_label,
            songs=[RecommendedSongRecord(m.song.song_id, m.similarity, m.song.dominant) for m in matches],
            text=text,
            metric=metric,
        )
        return RecommendationResult(
            record=record,
            classification=classification,
            matches=matches,
            timings_ms=self._put(record, classification, similarity=similarity_ms),
        )

    def _put(
        self, record: RecommendationRecord, classification: Classification, **step_ms: float
    ) -> dict[str, float]:
        """Write ``record`` (one PutItem); the answer's step timings (ms), the write's last."""
        start = time.perf_counter()
        self.store.put(record)
        return {
            "tokenize": classification.tokenize_ms,
            "inference": classification.inference_ms,
            **step_ms,
            "write": _ms_since(start),
        }

    def journey(
        self,
        text: str,
        target: str | dict[str, float],
        *,
        length: int = 6,
        exclude: Iterable[str] = (),
        metric: str | None = None,
        target_field: str = "target",
    ) -> JourneyResult:
        """Classify, plan a journey toward ``target`` (a label or {label: p}), and store it as a
        recommendation record of kind "journey" (one PutItem). ``UnprocessableRequest`` when the
        target is not a distribution or too few songs are left."""
        from moodtune.recommend.journeys import plan_journey, target_distribution
        from moodtune.similarity import DEFAULT_METRIC

        goal = target_distribution(target, target_field)  # before the model runs: a bad target costs nothing
        catalog = self.catalog()
        classification = self.classify(text)
        start = time.perf_counter()
        journey = plan_journey(
            catalog,
            classification.scores,
            goal,
            length=length,
            exclude=exclude,
            metric=metric or DEFAULT_METRIC,
        )
        journey_ms = _ms_since(start)
        record = RecommendationRecord(
            recommendation_id=new_recommendation_id(),
            created_at=self.clock(),
            model_version=self.model_version,
            mode="distribution",
            dominant=classification.dominant,
            scores=classification.scores_by_label,
            songs=[
                RecommendedSongRecord(s.song.song_id, s.similarity, s.song.dominant, step=i)
                for i, s in enumerate(journey.steps)
            ],
            text=text,
            kind="journey",
            target=dict(zip(LABELS, journey.target, strict=True)),
            metric=journey.metric,
        )
        return JourneyResult(
            record=record,
            classification=classification,
            journey=journey,
            timings_ms=self._put(record, classification, journey=journey_ms),
        )

    def song(self, song_id: str) -> ScoredSong | None:
        """A song of the current catalog, or None."""
        return self.catalog().song(song_id)


@lru_cache(maxsize=1)
def dynamodb() -> Any:
    """The DynamoDB resource of this environment (AWS_ENDPOINT_URL points it at the local stack)."""
    return boto3.resource("dynamodb", config=DYNAMODB_CONFIG)


@lru_cache(maxsize=1)
def snapshot_s3() -> Any:
    """The S3 client that reads catalog snapshots (``SNAPSHOT_S3_CONFIG``)."""
    return boto3.client("s3", config=SNAPSHOT_S3_CONFIG)


def count_catalog_failure(exc: Exception) -> None:
    """One ``CatalogLoadFailed`` metric (EMF, flushed at once: a refresh runs beside the request's
    metrics), dimension ``service`` only, which ``CatalogLoadFailedAlarm`` watches; the reason is in
    the log line."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MoodTune")
    logger.warning("catalog load failed (%s)", type(exc).__name__)
    with single_metric(name="CatalogLoadFailed", unit=MetricUnit.Count, value=1, namespace=namespace):
        pass


@lru_cache(maxsize=1)
def get_store() -> RecommendationStore:
    """The recommendation store on FEEDBACK_TABLE."""
    settings: Settings = get_settings()
    return RecommendationStore(
        dynamodb().Table(settings.feedback_table),
        store_text=settings.store_text,
        retention_days=settings.text_retention_days,
    )


@lru_cache(maxsize=1)
def get_classifier() -> EmotionClassifier:
    """The emotion classifier on the bundle in MODEL_DIR."""
    from moodtune.emotion.classifier import (
        EmotionClassifier,  # onnxruntime: only the recommend function needs it
    )

    settings = get_settings()
    return EmotionClassifier.from_bundle(settings.model_dir, threads=settings.ort_intra_op_threads)


@lru_cache(maxsize=1)
def get_recommend_service() -> RecommendService:
    """The recommend function's service: classifier, catalog cache of its model version (served from
    its S3 snapshot in SNAPSHOT_BUCKET), store."""
    from moodtune.catalog import CatalogCache, S3Objects, SnapshotSource
    from moodtune.similarity import METRICS

    settings = get_settings()
    classifier = get_classifier()
    source = SnapshotSource(S3Objects(snapshot_s3(), settings.snapshot_bucket), classifier.model_version)
    metrics = tuple(METRICS.values())
    catalogs = CatalogCache(
        # Prepared for every metric a request may ask for as it loads (at init and on each new
        # snapshot), not on a request; an unchanged snapshot is the same catalog, already prepared.
        lambda: source().prepare(*metrics),
        ttl_seconds=settings.catalog_ttl_seconds,
        on_failure=count_catalog_failure,
    )
    return RecommendService(
        classifier,
        catalogs,
        get_store(),
        explore=settings.explore_share,
        explore_seed=settings.explore_seed,
        explore_window=settings.explore_window,
    )


def warm_recommend() -> None:
    """Load the model and the catalog, prepared for the metric, now (Lambda init). A catalog that
    cannot be read yet is logged, not raised: requests then answer 503 (or 500 for a missing table)
    and retry the load, instead of the whole function failing its init."""
    service = get_recommend_service()
    try:
        service.catalog()
    except StoreError as exc:
        count_catalog_failure(exc.__cause__ or exc)
        logger.warning("catalog not loaded at init; will retry on the first request")


def reset() -> None:
    """Forget every singleton and the settings (tests, or after changing the environment)."""
    for cached in (get_settings, dynamodb, snapshot_s3, get_store, get_classifier, get_recommend_service):
        cached.cache_clear()

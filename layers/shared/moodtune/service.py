"""The wiring of one execution environment: classifier, catalog cache and store, built once.

Handlers call ``warm_*`` at import time (the Lambda init phase), so the model session and the catalog
are loaded before the first request; the request path only does per-request work. The feedback
function only needs the store: numpy, the catalog and the classifier (onnxruntime) are imported where
the recommend side first needs them, so the feedback function's layer ships none of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from moodtune.labels import LABELS
from moodtune.records import (
    RecommendationRecord,
    RecommendationStore,
    RecommendedSongRecord,
    StoreUnavailable,
    new_recommendation_id,
)
from moodtune.settings import Settings, get_settings

if TYPE_CHECKING:
    import numpy as np

    from moodtune.catalog import Catalog, CatalogCache, ScoredSong
    from moodtune.classifier import EmotionClassifier
    from moodtune.recommend import Match, Mode

logger = logging.getLogger(__name__)

# Throttling and 5xx answers are retried (standard mode: exponential backoff with jitter, 3 attempts in
# all, at most ~3 s of backoff) before a StoreUnavailable reaches the client as 503; short timeouts
# keep a dead endpoint from eating the function's whole timeout.
DYNAMODB_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    tcp_keepalive=True,
)


@dataclass(frozen=True)
class Classification:
    """A text's emotion distribution (label order) and how long it took."""

    scores: np.ndarray
    dominant: str
    model_version: str
    tokenize_ms: float
    inference_ms: float

    @property
    def scores_by_label(self) -> dict[str, float]:
        return {label: round(float(p), 6) for label, p in zip(LABELS, self.scores, strict=True)}


@dataclass(frozen=True)
class RecommendationResult:
    """A recommendation as made and stored, with the time each step took (ms)."""

    record: RecommendationRecord
    classification: Classification
    matches: list[Match]
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
    ) -> None:
        self.classifier = classifier
        self.catalogs = catalogs
        self.store = store
        self.clock = clock

    @property
    def model_version(self) -> str:
        return self.classifier.model_version

    def catalog(self) -> Catalog:
        """The current catalog; ``StoreUnavailable`` when SongsTable cannot be read and none is cached."""
        try:
            return self.catalogs.get()
        except (ClientError, BotoCoreError) as exc:
            logger.error("song catalog could not be loaded", extra={"error": type(exc).__name__})
            raise StoreUnavailable("the song catalog is unavailable; retry later") from exc

    def classify(self, text: str) -> Classification:
        """Emotion distribution of one (already validated) text."""
        from moodtune.recommend import dominant_label  # numpy-side imports stay off the feedback path

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
        self, text: str, *, limit: int = 5, mode: Mode = "distribution", exclude: Iterable[str] = ()
    ) -> RecommendationResult:
        """Classify, rank the catalog, and write the recommendation record (one PutItem)."""
        from moodtune.recommend import recommend

        catalog = self.catalog()
        classification = self.classify(text)
        start = time.perf_counter()
        matches = recommend(catalog, classification.scores, limit=limit, mode=mode, exclude=exclude)
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
        )
        start = time.perf_counter()
        self.store.put(record)
        write_ms = _ms_since(start)
        return RecommendationResult(
            record=record,
            classification=classification,
            matches=matches,
            timings_ms={
                "tokenize": classification.tokenize_ms,
                "inference": classification.inference_ms,
                "similarity": similarity_ms,
                "write": write_ms,
            },
        )

    def song(self, song_id: str) -> ScoredSong | None:
        """A song of the current catalog, or None."""
        return self.catalog().song(song_id)


@lru_cache(maxsize=1)
def dynamodb() -> Any:
    """The DynamoDB resource of this environment (AWS_ENDPOINT_URL points it at the local stack)."""
    return boto3.resource("dynamodb", config=DYNAMODB_CONFIG)


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
    from moodtune.classifier import EmotionClassifier  # onnxruntime: only the recommend function needs it

    settings = get_settings()
    return EmotionClassifier.from_bundle(settings.model_dir, threads=settings.ort_intra_op_threads)


@lru_cache(maxsize=1)
def get_recommend_service() -> RecommendService:
    """The recommend function's service: classifier, catalog cache of its model version, store."""
    from moodtune.catalog import CatalogCache, load_catalog

    settings = get_settings()
    classifier = get_classifier()
    songs_table = dynamodb().Table(settings.songs_table)
    catalogs = CatalogCache(
        lambda: load_catalog(songs_table, classifier.model_version),
        ttl_seconds=settings.catalog_ttl_seconds,
    )
    return RecommendService(classifier, catalogs, get_store())


def warm_recommend() -> None:
    """Load the model and the catalog now (Lambda init). A catalog that cannot be read yet is logged,
    not raised: requests then answer 503 and retry the load, instead of the whole function failing."""
    service = get_recommend_service()
    try:
        service.catalog()
    except StoreUnavailable:
        logger.warning("catalog not loaded at init; will retry on the first request")


def reset() -> None:
    """Forget every singleton and the settings (tests, or after changing the environment)."""
    for cached in (get_settings, dynamodb, get_store, get_classifier, get_recommend_service):
        cached.cache_clear()

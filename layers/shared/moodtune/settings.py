"""Runtime configuration from environment variables (template.yaml sets them in AWS)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting moodtune reads; names match the environment variables case-insensitively."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    songs_table: str = Field(default="moodtune-songs-local", min_length=3, max_length=255)
    feedback_table: str = Field(default="moodtune-feedback-local", min_length=3, max_length=255)
    model_dir: Path = Path("models/demo")
    store_text: bool = True
    text_retention_days: int = Field(default=30, ge=1, le=3650)
    catalog_ttl_seconds: float = Field(default=300.0, ge=0)
    # The share of recommendations whose last slot goes to a song ranked below the list (0: none),
    # drawn from the EXPLORE_WINDOW songs ranked best below it (0: from all of them), and the seed of
    # that draw (unset: a fresh one per execution environment).
    explore_share: float = Field(default=0.0, ge=0.0, le=0.5)
    explore_window: int = Field(default=0, ge=0, le=10000)
    explore_seed: int | None = None
    # The bucket the catalog snapshots live in (moodtune.catalog.snapshot): serving reads it.
    snapshot_bucket: str = Field(default="moodtune-snapshots-local", min_length=3, max_length=63)
    ort_intra_op_threads: int = Field(default=0, ge=0, le=64)
    # The feedback export (moodtune.feedback.export): its bucket; how far back the first scheduled
    # run starts (records live TEXT_RETENTION_DAYS); how long after midnight UTC a day is complete.
    export_bucket: str = Field(default="", max_length=63)
    export_initial_days: int = Field(default=30, ge=0, le=400)
    export_settle_minutes: int = Field(default=15, ge=0, le=1440)
    # The days one scheduled run exports at most (a catch-up window after an outage).
    export_max_days_per_run: int = Field(default=31, ge=1, le=400)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this execution environment, read once (``get_settings.cache_clear()`` re-reads)."""
    return Settings()

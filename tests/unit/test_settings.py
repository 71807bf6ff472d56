"""Settings come from the environment, with the documented local defaults."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from moodtune.settings import Settings, get_settings

ENV = (
    "SONGS_TABLE",
    "FEEDBACK_TABLE",
    "MODEL_DIR",
    "STORE_TEXT",
    "TEXT_RETENTION_DAYS",
    "CATALOG_TTL_SECONDS",
    "ORT_INTRA_OP_THREADS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_defaults() -> None:
    settings = Settings()
    assert settings.songs_table == "moodtune-songs-local"
    assert settings.feedback_table == "moodtune-feedback-local"
    assert settings.model_dir == Path("models/demo")
    assert settings.store_text is True
    assert settings.text_retention_days == 30
    assert settings.catalog_ttl_seconds == 300
    assert settings.ort_intra_op_threads == 0


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SONGS_TABLE", "songs-prod")
    monkeypatch.setenv("MODEL_DIR", "/opt/model")
    monkeypatch.setenv("STORE_TEXT", "false")
    monkeypatch.setenv("TEXT_RETENTION_DAYS", "7")
    monkeypatch.setenv("ORT_INTRA_OP_THREADS", "2")
    settings = Settings()
    assert (settings.songs_table, settings.model_dir) == ("songs-prod", Path("/opt/model"))
    assert (settings.store_text, settings.text_retention_days, settings.ort_intra_op_threads) == (False, 7, 2)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STORE_TEXT", "maybe"),
        ("TEXT_RETENTION_DAYS", "0"),
        ("CATALOG_TTL_SECONDS", "-1"),
        ("SONGS_TABLE", "x"),
    ],
)
def test_invalid_values_are_refused_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.lower()):
        Settings()


def test_get_settings_is_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    monkeypatch.setenv("SONGS_TABLE", "other-table")
    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().songs_table == "other-table"

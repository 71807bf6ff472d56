"""Request and response models of the HTTP API, shared by the handlers and the OpenAPI document.

Requests are strict: unknown fields are refused, numbers are not read from strings (an integer may be
written ``17.0``: JSON Schema's integers are the numbers without a fraction), booleans are only
``true``/``false``, and no string may hold a lone surrogate (JSON's ``"\ud800"``), which neither the
tokenizer nor DynamoDB accepts. What the OpenAPI document says is what is checked: ``text`` is 1 to
500 characters as sent (``minLength``/``maxLength``) with at least one character that is neither
whitespace nor zero-width (``pattern``), so that it is not empty after ``normalize_text`` (NFC, zero-width
characters dropped, whitespace collapsed and trimmed), which only ever shortens it past NFC.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)
from pydantic_core import PydanticCustomError

from moodtune.emotion.text import ZERO_WIDTH_CHARS, normalize_text

TEXT_MAX_CHARS = 500
LIMIT_MAX = 20
EXCLUDE_MAX = 50
SONG_ID_MAX_CHARS = 128

Label = Literal["joy", "sadness", "anger", "fear", "surprise", "disgust", "neutral"]


def _has_lone_surrogate(value: str) -> bool:
    """True for a string that UTF-8 cannot encode: lone surrogates ("\ud800") survive JSON parsing."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _no_lone_surrogates(value: object) -> object:
    """Refuse a string with a lone surrogate, with a clear message (before length checks run)."""
    if isinstance(value, str) and _has_lone_surrogate(value):
        raise PydanticCustomError("string_unicode", "contains invalid Unicode (lone surrogates)")
    return value


# At least one character that normalize_text keeps: neither whitespace nor a zero-width character it
# drops. The document's patterns are ECMA-262 regexes, whose \s is not Python's (it lacks U+001C-U+001F
# and U+0085, which normalize_text trims), so every such character is listed. U+3000 is the last one.
TRIMMED_CHARS = "".join(sorted({c for c in map(chr, range(0x3001)) if c.isspace()} | set(ZERO_WIDTH_CHARS)))
TEXT_PATTERN = "[^" + "".join(f"\\u{ord(c):04x}" for c in TRIMMED_CHARS) + "]"


def _integral(value: object) -> object:
    """``17.0`` -> ``17``: JSON Schema's ``integer`` is any number without a fraction, and the
    document promises that; ``17.5``, ``"17"`` and ``true`` stay refused (by StrictInt)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _checked_text(value: str) -> str:
    if len(value) > TEXT_MAX_CHARS:  # as sent, as the document's maxLength says
        raise PydanticCustomError(
            "text_too_long", "text is longer than {max} characters", {"max": TEXT_MAX_CHARS}
        )
    if _has_lone_surrogate(value):  # the tokenizer cannot take them either
        raise PydanticCustomError("text_unicode", "text contains invalid Unicode (lone surrogates)")
    text = normalize_text(value)
    if not text:
        raise PydanticCustomError("text_empty", "text is empty after trimming")
    # NFC can lengthen a few rare sequences (at most 3x): the tokenizer truncates, so that is kept.
    return text


Text = Annotated[
    StrictStr,
    AfterValidator(_checked_text),
    Field(
        description=f"Korean text; 1 to {TEXT_MAX_CHARS} characters as sent, at least one of them neither "
        "whitespace nor zero-width; the text is then NFC-normalised, whitespace runs collapsed, trimmed",
        json_schema_extra={"minLength": 1, "maxLength": TEXT_MAX_CHARS, "pattern": TEXT_PATTERN},
        examples=["오늘 하루 너무 지치고 우울했어"],
    ),
]
SongId = Annotated[
    StrictStr,
    Field(min_length=1, max_length=SONG_ID_MAX_CHARS, examples=["song-0001"]),
    BeforeValidator(_no_lone_surrogates),
]
Scores = Annotated[dict[Label, float], Field(description="probability of each emotion (they sum to 1)")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def __repr__(self) -> str:
        # Field names only: a request's repr must never carry the user's text into a log or a trace
        # (Powertools debug-logs the route's arguments, building this repr on every request).
        return f"{type(self).__name__}({', '.join(type(self).model_fields)})"

    __str__ = __repr__


class EmotionRequest(_Request):
    """POST /v1/emotions."""

    text: Text


class RecommendationRequest(_Request):
    """POST /v1/recommendations."""

    text: Text
    limit: Annotated[StrictInt, BeforeValidator(_integral)] = Field(
        default=5, ge=1, le=LIMIT_MAX, description="how many songs"
    )
    mode: Literal["distribution", "dominant"] = Field(
        default="distribution",
        description="distribution: whole catalog by similarity of the 7-emotion distributions; "
        "dominant: only songs of the text's top emotion, by cosine (the original method)",
    )
    exclude: list[SongId] = Field(
        default_factory=list, max_length=EXCLUDE_MAX, description="song ids never to recommend"
    )


class FeedbackRequest(_Request):
    """POST /v1/recommendations/{recommendation_id}/feedback."""

    song_id: SongId
    satisfied: StrictBool


class Emotion(BaseModel):
    """A text's emotion: the dominant label and the full distribution."""

    dominant: Label
    scores: Scores


class EmotionResponse(Emotion):
    """Answer of POST /v1/emotions."""

    model_version: str


class Explanation(BaseModel):
    """Why a song fits: its strongest emotions, the text's, and the labels both name."""

    song_top: list[tuple[Label, float]]
    text_top: list[tuple[Label, float]]
    shared: list[Label]


class RecommendedSong(BaseModel):
    """One song of a recommendation."""

    song_id: str
    title: str
    artist: str
    similarity: float
    dominant: Label
    scores: Scores
    explanation: Explanation


class RecommendationResponse(BaseModel):
    """Answer of POST /v1/recommendations (201)."""

    recommendation_id: str
    model_version: str
    mode: Literal["distribution", "dominant"]
    emotion: Emotion
    songs: list[RecommendedSong]


class FeedbackResponse(BaseModel):
    """Answer of the feedback route: the feedback as recorded."""

    recommendation_id: str
    song_id: str
    satisfied: bool
    recorded_at: str = Field(description="ISO 8601 UTC")


class SongResponse(BaseModel):
    """Answer of GET /v1/songs/{song_id}."""

    song_id: str
    title: str
    artist: str
    album: str | None = None
    year: int | None = None
    genre: str | None = None
    dominant: Label
    scores: Scores
    chunks: int
    model_version: str


class HealthResponse(BaseModel):
    """Answer of GET /v1/health."""

    status: Literal["ok", "degraded"] = Field(description="degraded: serving, but the catalog is empty")
    model_version: str
    catalog_size: int


class ErrorDetail(BaseModel):
    """One problem with the request: where, what kind, and a readable message."""

    loc: list[str | int]
    type: str
    msg: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer."""

    message: str
    errors: list[ErrorDetail] | None = None

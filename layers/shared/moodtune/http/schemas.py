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

import math
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic_core import PydanticCustomError

from moodtune.emotion.text import ZERO_WIDTH_CHARS, normalize_text

TEXT_MAX_CHARS = 500
LIMIT_MAX = 20
EXCLUDE_MAX = 50
SONG_ID_MAX_CHARS = 128
# Mirrors moodtune.recommend.journeys and .diversity (numpy-side modules the schemas do not import;
# tests/unit/http/test_schemas.py holds them equal).
JOURNEY_LENGTH_MIN, JOURNEY_LENGTH_MAX, JOURNEY_LENGTH_DEFAULT = 3, 12, 6
TARGET_SUM_TOLERANCE = 0.01
DEFAULT_MMR_LAMBDA = 0.6

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


# Every character normalize_text trims (whitespace, the zero-width characters it drops); U+3000 is the
# last one. (ECMA-262's \s, the document's, is not Python's: it lacks U+001C-U+001F and U+0085.)
TRIMMED_CHARS = "".join(sorted({c for c in map(chr, range(0x3001)) if c.isspace()} | set(ZERO_WIDTH_CHARS)))
# What moodtune can read (moodtune.emotion.readable): a Hangul syllable or compatibility jamo, or an
# emoji. The pattern names the emoji of U+2600-U+27BF only: those above U+FFFF (🙂, 😭) cannot be
# named in a pattern every client's regex engine reads (ECMA-262 without the u flag sees their UTF-16
# halves; schemathesis drops such a pattern), so a text of those alone is accepted beyond what the
# pattern says, as the description states. Any character the pattern names is also one normalize_text
# keeps (none is in TRIMMED_CHARS), so a text that matches is never empty after trimming. One that
# matches may still be unreadable (a keyboard mash of jamo, an emoji the lexicon does not know): that
# is the 422 text_unreadable the routes document.
TEXT_PATTERN = "[\\uac00-\\ud7a3\\u3131-\\u318e\\u2600-\\u27bf]"


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
        description=f"Korean text; 1 to {TEXT_MAX_CHARS} characters as sent, with at least one Hangul "
        "syllable or jamo or an emoji (the pattern names those below U+FFFF; a text of emoji alone "
        "such as 🙂 is read too); text without Korean is 422 text_unreadable; the text is then "
        "NFC-normalised, whitespace runs collapsed, trimmed",
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


Metric = Literal["cosine", "jensen_shannon"]
MetricField = Field(
    default="cosine",
    description="similarity of emotion distributions: cosine, or 1 - Jensen-Shannon distance (base 2)",
)
Probability = Annotated[StrictFloat, Field(ge=0, le=1)]  # strict: 1 and 0.5, never "0.5" or true


_LABELS: tuple[str, ...] = get_args(Label)


def _checked_target(value: object) -> object:
    """A target as a label or {label: probability}, checked with one clear error each (before the
    union's own validation, whose errors would name both branches)."""
    if isinstance(value, str):
        if value not in _LABELS:
            raise PydanticCustomError(
                "target_label",
                "unknown emotion '{label}'; known: {known}",
                {"label": value[:40], "known": ", ".join(_LABELS)},
            )
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError("target_type", "target must be an emotion label or {label: probability}")
    return _checked_scores(value)


def _checked_scores(value: object) -> object:
    if not isinstance(value, dict):
        raise PydanticCustomError("target_type", "target_scores must be {label: probability}")
    for label, p in value.items():
        if label not in _LABELS:
            raise PydanticCustomError(
                "target_label",
                "unknown emotion '{label}'; known: {known}",
                {"label": str(label)[:40], "known": ", ".join(_LABELS)},
            )
        if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p):
            raise PydanticCustomError(
                "target_probability", "the probability of {label} is not a number", {"label": label}
            )
        if p < 0:
            raise PydanticCustomError(
                "target_negative", "the probability of {label} is negative", {"label": label}
            )
    # The sum is checked by the journey planner (422 target_sum): JSON Schema cannot say "sums to 1",
    # so a document-valid mapping must not be refused as malformed (400).
    return value


TargetScores = Annotated[
    dict[Label, Probability],
    Field(
        description="probability of each named emotion (the others are 0), each >= 0; they must sum to 1 "
        f"within {TARGET_SUM_TOLERANCE} (else 422 target_sum)",
        examples=[{"joy": 0.7, "neutral": 0.3}],
    ),
]


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
    metric: Metric = MetricField
    artist_spread: StrictBool = Field(
        default=True, description="no artist twice in the list unless the catalog cannot fill it"
    )
    mmr_lambda: Annotated[StrictFloat, Field(ge=0, le=1)] = Field(
        default=DEFAULT_MMR_LAMBDA,
        description="MMR re-ranking: 1 is the plain ranking, lower values trade similarity for variety",
    )


class JourneyRequest(_Request):
    """POST /v1/journeys: songs from the text's mood, step by step, toward a target mood."""

    # The document states what the validator below checks: exactly one of target and target_scores
    # (so that a client, or a fuzzer, never sends both or neither in good faith).
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["target"],
                    "properties": {"target": {"not": {"type": "null"}}},
                    "not": {"required": ["target_scores"]},
                },
                {
                    "required": ["target_scores"],
                    "properties": {"target_scores": {"not": {"type": "null"}}},
                    "not": {"required": ["target"]},
                },
            ]
        },
    )

    text: Text
    target: Annotated[Label | TargetScores | None, BeforeValidator(_checked_target)] = Field(
        default=None,
        description="the mood to reach: an emotion label, or {label: probability}",
        examples=["joy"],
    )
    target_scores: Annotated[TargetScores | None, BeforeValidator(_checked_scores)] = Field(
        default=None, description="the same as target given as {label: probability}; give one of the two"
    )
    length: Annotated[StrictInt, BeforeValidator(_integral)] = Field(
        default=JOURNEY_LENGTH_DEFAULT,
        ge=JOURNEY_LENGTH_MIN,
        le=JOURNEY_LENGTH_MAX,
        description="how many songs",
    )
    exclude: list[SongId] = Field(
        default_factory=list, max_length=EXCLUDE_MAX, description="song ids never to include"
    )
    metric: Metric = MetricField

    @model_validator(mode="after")
    def _one_target(self) -> JourneyRequest:
        if self.target is not None and self.target_scores is not None:
            raise PydanticCustomError(
                "target_twice", "give the target one way: target or target_scores, not both"
            )
        if self.target is None and self.target_scores is None:
            raise PydanticCustomError(
                "target_missing", "target is required (a label or {label: probability})"
            )
        return self

    @property
    def target_value(self) -> str | dict[str, float]:
        """The target as given: a label or a mapping of probabilities."""
        return self.target if self.target is not None else self.target_scores  # type: ignore[return-value]


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
    metric: Metric = "cosine"
    emotion: Emotion
    songs: list[RecommendedSong]


class TargetScoresOut(BaseModel):
    """A distribution over the seven emotions."""

    scores: Scores


class JourneySong(BaseModel):
    """A song of a journey."""

    song_id: str
    title: str
    artist: str
    dominant: Label
    scores: Scores


class JourneyStep(BaseModel):
    """One step: the song, the waypoint it was chosen for, and how close it is to each."""

    step: int = Field(description="0 for the first song")
    song: JourneySong
    waypoint: TargetScoresOut
    similarity: float = Field(description="the song's similarity to its waypoint")
    target_similarity: float = Field(description="the song's similarity to the target")


class JourneyResponse(BaseModel):
    """Answer of POST /v1/journeys (201). ``journey_id`` is a recommendation id: the feedback route
    takes it with any of the journey's songs."""

    journey_id: str
    model_version: str
    metric: Metric
    emotion: Emotion
    target: TargetScoresOut
    reachable: bool = Field(
        description="false: no song is near the target; the journey goes as far as the catalog allows "
        "and is shorter than asked"
    )
    stay: bool = Field(description="the target's top emotion is the text's: songs that keep the mood")
    tolerance: float = Field(description="how far one step may move away from the target (1 - similarity)")
    largest_step: float = Field(description="the largest distance (1 - similarity) between consecutive songs")
    steps: list[JourneyStep]


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

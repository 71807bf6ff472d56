"""recommend: rank the catalog against a text's emotion distribution and explain each pick."""

from moodtune._exports import lazy_exports

_EXPORTS = {
    "Match": "ranking",
    "Mode": "ranking",
    "Explanation": "ranking",
    "recommend": "ranking",
    "explain": "ranking",
    "top_emotions": "ranking",
    "dominant_label": "ranking",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

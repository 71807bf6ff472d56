"""feedback: the recommendation record and its feedback, the daily export to S3, the satisfaction report."""

from moodtune._exports import lazy_exports

_EXPORTS = {
    "RecommendationStore": "records",
    "RecommendationRecord": "records",
    "RecommendationNotFound": "records",
    "SongNotInRecommendation": "records",
    "FeedbackRow": "rows",
    "latest_feedback": "rows",
    "FeedbackExporter": "export",
    "ExportError": "export",
    "read_export": "export",
    "build_report": "report",
    "SatisfactionReport": "report",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

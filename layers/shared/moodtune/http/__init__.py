"""http: the API Gateway resolver, its one error shape, the request guard, and the API's schemas."""

from moodtune._exports import lazy_exports

_EXPORTS = {
    "MoodtuneResolver": "resolver",
    "error_response": "resolver",
    "json_response": "resolver",
    "route_responses": "resolver",
    "ErrorResponse": "schemas",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

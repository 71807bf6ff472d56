"""schemathesis hooks for moodtune's fuzz run (loaded through SCHEMATHESIS_HOOKS by infra.local.fuzz).

One check replaces schemathesis' ``unsupported_method``, which wants 405 + Allow for a method the
document does not list on a path. The deployed API is an API Gateway HTTP API: it routes only the
operations of the document and answers anything else 404 ``{"message": "Not Found"}`` before any
function runs, whatever the method (the document's description says so). The check holds the local
front to exactly that, on every path, including those without parameters.
"""

from __future__ import annotations

import json

import schemathesis
from schemathesis import Case, CheckContext, Response
from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario


class UndeclaredMethodAnswer(AssertionError):
    """A method the document does not list got something other than the HTTP API's JSON 404."""


@schemathesis.check
def undeclared_method_is_the_http_apis_404(ctx: CheckContext, response: Response, case: Case) -> None:
    """An undeclared method on a documented path: 404 with ``{"message": "Not Found"}`` (JSON)."""
    meta = case.meta
    data = meta.phase.data if meta is not None else None
    if not isinstance(data, CoveragePhaseData) or data.scenario != CoverageScenario.UNSPECIFIED_HTTP_METHOD:
        return None
    method = response.request.method
    if method == "OPTIONS":  # CORS preflight: answered by the HTTP API's CorsConfiguration
        return None
    if response.status_code != 404:
        raise UndeclaredMethodAnswer(f"{method} {case.path} answered {response.status_code}, not 404")
    if method == "HEAD":
        return None
    if not response.headers.get("content-type", [""])[0].startswith("application/json"):
        raise UndeclaredMethodAnswer(f"{method} {case.path}: the 404 is not JSON")
    if json.loads(response.content) != {"message": "Not Found"}:
        raise UndeclaredMethodAnswer(f"{method} {case.path}: the 404's body is not the HTTP API's")
    return None

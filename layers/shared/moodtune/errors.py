"""Store errors every room shares: a DynamoDB or S3 failure as 503 (may clear) or 500 (will not).

Ground floor: imports botocore only, so the HTTP plumbing, the feedback store and the catalog can
all raise and catch the same errors without importing each other.
"""

from __future__ import annotations

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

RETRY_AFTER_SECONDS = 1


class StoreError(Exception):
    """Base class of the store's errors."""


class StoreUnavailable(StoreError):
    """DynamoDB could not be reached or kept failing after retries; the client should retry later."""

    def __init__(self, message: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreFailure(StoreError):
    """DynamoDB refused the request for a reason that retrying cannot fix (ValidationException,
    ResourceNotFoundException, AccessDeniedException...): a bug or a misconfiguration of ours, since
    every user value is validated before it reaches DynamoDB. Answered 500, never 503."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


# Error codes that a later attempt can clear: botocore's standard-mode retryable codes, which is what
# "kept failing after retries" means here. Everything else with a 4xx status is StoreFailure.
_TRANSIENT_CODES = frozenset(
    {
        "InternalServerError",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "ThrottlingException",
        "Throttling",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)


def error_code(exc: Exception) -> str:
    """The DynamoDB error code of a ClientError, or the exception's class name."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def is_transient(exc: Exception) -> bool:
    """True when a later attempt may succeed: connection problems, timeouts, throttling, 5xx."""
    if not isinstance(exc, ClientError):
        # Connection refused or reset, connect and read timeouts; not NoCredentialsError or
        # ParamValidationError, which are BotoCoreErrors too but no retry clears them.
        return isinstance(exc, BotoConnectionError | HTTPClientError)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status >= 500 or status == 429 or error_code(exc) in _TRANSIENT_CODES


def store_error(what: str, exc: Exception) -> StoreError:
    """The StoreError for a botocore failure of ``what``: StoreUnavailable (503) when it may clear,
    StoreFailure (500) when it will not."""
    code = error_code(exc)
    if is_transient(exc):
        return StoreUnavailable(f"{what} is unavailable ({code}); retry later")
    return StoreFailure(f"{what} refused the request ({code})", code)


class UnprocessableRequest(ValueError):
    """A well-formed request that cannot be served as asked (422), naming the field at fault: an
    exclude list that leaves too few songs for a journey, say. Pure: no store is involved."""

    def __init__(self, field: str, message: str, kind: str = "unprocessable") -> None:
        super().__init__(message)
        self.field = field
        self.kind = kind

"""Domain errors and their one mapping to RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://o2oloop.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemError(Exception):
    """A failure the client should understand; becomes one problem+json response."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        return problem(self.status, self.slug, self.title, self.detail, instance, **self.extensions)


class InvalidInput(ProblemError):
    status, slug, title = 422, "invalid-input", "Invalid input"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Missing or invalid credentials"


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Not allowed for this role"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict with the current state"


class RuleViolation(ProblemError):
    """A business rule refused the request; `violations` lists every broken rule."""

    status, slug, title = 422, "rule-violation", "A business rule refused this request"


class RateLimited(ProblemError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class IdempotencyMismatch(ProblemError):
    status, slug, title = (
        422,
        "idempotency-key-reused",
        "Idempotency-Key reused with other parameters",
    )


class ServiceBusy(ProblemError):
    status, slug, title = 503, "database-busy", "Service busy"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, retry_after_seconds=1)


class IdempotencyInProgress(ProblemError):
    status, slug, title = 409, "idempotency-key-in-progress", "A request with this key is running"


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return body

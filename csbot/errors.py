"""Domain errors. Core code raises these; only web/middlewares.py turns them into HTTP statuses."""

from __future__ import annotations

from typing import Any


class CsbotError(Exception):
    """Base: `error` is a short machine-readable code, `detail` a human (or structured) explanation."""

    error = "error"

    def __init__(self, detail: Any = None) -> None:
        super().__init__(detail if isinstance(detail, str) else self.error)
        self.detail = detail


class InvalidSignature(CsbotError):
    error = "invalid_signature"


class PayloadTooLarge(CsbotError):
    error = "payload_too_large"


class MalformedEvent(CsbotError):
    """Not JSON, or a required field missing / of the wrong type; `field` names it ("message.text")."""

    error = "malformed_event"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__({"field": field, "problem": problem})
        self.field = field


class UnknownEventType(CsbotError):
    error = "unknown_event_type"


class UnknownShop(CsbotError):
    error = "unknown_shop"


class Unauthorized(CsbotError):
    error = "unauthorized"


class NotFound(CsbotError):
    error = "not_found"


class Conflict(CsbotError):
    """The request is well-formed but the thing is not in a state that allows it (suggestion already decided)."""

    error = "conflict"


class SchemaOutdated(CsbotError):
    """The database is not at the migration revision this code needs (csbot/store/schema.py)."""

    error = "schema_outdated"

    def __init__(self, current: str | None, needed: str, *, hint: str = "run `csbot db upgrade`") -> None:
        super().__init__(f"database schema is at {current or 'empty (no migrations applied)'}, code needs {needed}: "
                         f"{hint}")
        self.current = current
        self.needed = needed


class UnsupportedMediaType(CsbotError):
    """A body in a content type or content encoding the endpoint does not take; `field` names the header."""

    error = "unsupported_media_type"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__({"field": field, "problem": problem})
        self.field = field

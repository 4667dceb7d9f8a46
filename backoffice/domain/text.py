"""Free text typed by people (reasons, labels, notes): trimmed, bounded, refused with the field named."""

from __future__ import annotations

from backoffice.domain.errors import InvalidInput


def optional_text(value: object, field: str, limit: int) -> str | None:
    """The trimmed text, None when empty; InvalidInput if it is not text or longer than `limit`."""
    if value is not None and not isinstance(value, str):
        raise InvalidInput(field, f"{value!r} is not text")
    cleaned = (value or "").strip()
    if len(cleaned) > limit:
        raise InvalidInput(field, f"is longer than {limit} characters")
    return cleaned or None


def required_text(value: object, field: str, limit: int) -> str:
    """As `optional_text`, and empty is refused."""
    cleaned = optional_text(value, field, limit)
    if cleaned is None:
        raise InvalidInput(field, "is required")
    return cleaned

"""Free text fields: trimmed, bounded, refused with the field named."""

import pytest

from backoffice.domain.errors import InvalidInput
from backoffice.domain.text import optional_text, required_text


def test_trimmed_and_empty_is_none_or_refused() -> None:
    assert required_text("  retard  ", "reason", 10) == "retard"
    assert optional_text("   ", "note", 10) is None and optional_text(None, "note", 10) is None
    with pytest.raises(InvalidInput, match="reason: is required"):
        required_text(" ", "reason", 10)


@pytest.mark.parametrize(("value", "problem"), [(12, "12 is not text"), ("x" * 11, "is longer than 10 characters")])
def test_not_text_or_too_long_is_refused(value: object, problem: str) -> None:
    with pytest.raises(InvalidInput) as error:
        optional_text(value, "label", 10)
    assert (error.value.field, error.value.problem) == ("label", problem)

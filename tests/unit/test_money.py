"""Money parsing refuses floats, garbage and sub-cent precision, with the field named."""

from decimal import Decimal

import pytest

from backoffice.domain.errors import InvalidInput
from backoffice.domain.money import check_currency, parse_amount


@pytest.mark.parametrize(
    ("raw", "expected"), [("1234.50", "1234.50"), ("-12", "-12.00"), (7, "7.00"), (" 0.1 ", "0.10")]
)
def test_parse_amount_accepts_decimal_strings(raw: object, expected: str) -> None:
    assert parse_amount(raw) == Decimal(expected)


@pytest.mark.parametrize("raw", [1.5, "1.005", "abc", "", "NaN", "Infinity", True, "1e13"])
def test_parse_amount_refuses_with_the_field_named(raw: object) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_amount(raw, field="unit_sale_amount")
    assert error.value.field == "unit_sale_amount"


def test_currency_codes_are_iso_4217() -> None:
    assert check_currency("EUR") == "EUR"
    for bad in ("eur", "EURO", "XXX", None):
        with pytest.raises(InvalidInput, match="ISO 4217"):
            check_currency(bad)


@pytest.mark.parametrize("text", ["1e26", "1e1000000", "-1e999999999", "1000000000000"])
def test_huge_amounts_are_refused_as_too_large_never_a_decimal_error(text: str) -> None:
    with pytest.raises(InvalidInput, match="too large"):
        parse_amount(text)


def test_the_largest_amount_and_tiny_exponents() -> None:
    assert parse_amount("999999999999.99") == Decimal("999999999999.99")
    with pytest.raises(InvalidInput, match="more than 2 decimals"):
        parse_amount("1e-1000000")

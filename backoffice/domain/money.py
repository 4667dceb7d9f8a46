"""Money is Decimal with at most two places, never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from backoffice.domain.errors import InvalidInput

CENT = Decimal("0.01")

# ISO 4217 active codes (2024 list), enough to refuse a typo without a network look-up.
_ISO_4217 = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN
    BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
    GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW
    KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD
    NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD
    SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES
    VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL
"""
CURRENCIES = frozenset(_ISO_4217.split())


def parse_amount(value: object, field: str = "amount") -> Decimal:
    """A decimal string (or int) with at most two decimals; refuses floats and garbage."""
    if isinstance(value, bool | float):
        raise InvalidInput(field, f"{value!r} must be a decimal string such as '12.50', not a float")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput(field, f"{value!r} is not a decimal amount") from None
    if not amount.is_finite():
        raise InvalidInput(field, f"{value!r} is not a finite amount")
    # Size first, from the exponent alone: quantizing more than 26 digits (1e26) raises
    # InvalidOperation, and abs() of 1e1000000 overflows the decimal context.
    if amount and amount.adjusted() >= 12:
        raise InvalidInput(field, f"{value!r} is too large")
    if amount != amount.quantize(CENT):
        raise InvalidInput(field, f"{value!r} has more than 2 decimals")
    return amount.quantize(CENT)


def round_money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def check_currency(code: object, field: str = "currency") -> str:
    if not isinstance(code, str) or code not in CURRENCIES:
        raise InvalidInput(field, f"{code!r} is not an ISO 4217 currency code")
    return code

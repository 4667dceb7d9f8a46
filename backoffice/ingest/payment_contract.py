"""The payments contract (landing.md), checked one CSV record at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from backoffice.ingest.booking_contract import ContractBreach
from backoffice.ingest.field_checks import Fields

COLUMNS = (
    "payment_id",
    "dossier_number",
    "received_at",
    "method",
    "amount",
    "currency",
    "status",
    "provider",
    "provider_reference",
    "payer_name",
)
METHODS = ("card", "transfer", "gift_voucher", "holiday_voucher", "cheque", "cash")
STATUSES = ("captured", "failed", "refunded", "chargeback")


@dataclass(frozen=True)
class Payment:
    payment_id: str
    dossier_number: str | None  # None: a bank transfer nobody could attribute yet
    received_at: datetime  # UTC
    method: str
    amount: Decimal
    currency: str
    status: str
    provider: str | None
    provider_reference: str | None
    payer_name: str | None

    def row(self) -> tuple[object, ...]:
        """In COLUMNS order, for COPY."""
        return tuple(getattr(self, column) for column in COLUMNS)


def parse_payment(record: dict[str, str]) -> Payment:
    """Check one record; raise ContractBreach naming every field at fault."""
    f = Fields(dict(record))
    payment_id = f.text("payment_id")
    values = {
        "payment_id": payment_id,
        # Kept even when the dossier is unknown: the payment may land before its dossier.
        "dossier_number": f.text("dossier_number", required=False),
        "received_at": f.timestamp("received_at"),
        "method": f.enum("method", METHODS),
        "amount": f.amount("amount"),
        "currency": f.currency("currency"),
        "status": f.enum("status", STATUSES),
        "provider": f.text("provider", required=False),
        "provider_reference": f.text("provider_reference", required=False),
        "payer_name": f.text("payer_name", required=False),
    }
    if f.problems:
        raise ContractBreach("; ".join(f.problems), payment_id)
    return Payment(**values)  # type: ignore[arg-type]

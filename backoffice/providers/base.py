"""The payment-provider interface: charge the card a client left on file for a dossier.

A provider must honour idempotency keys as card acquirers do: a second `charge` with a key it
has seen returns the first outcome and moves no money. backoffice.services.balances relies on it
to settle a charge whose outcome it never recorded (a crash between the call and the commit).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class Capture:
    """The money was taken; `reference` is the provider's id of the charge."""

    reference: str


@dataclass(frozen=True)
class Decline:
    """The card was refused; `retryable` says whether trying again another day may succeed."""

    reason: str
    retryable: bool


class ProviderError(Exception):
    """The provider could not answer (or refused the request itself); the outcome is unknown."""


class PaymentProvider(Protocol):
    name: str

    def charge(self, *, dossier_number: str, amount: Decimal, currency: str, idempotency_key: str) -> Capture | Decline:
        """Charge the card on file of `dossier_number`; the same key returns the same outcome."""
        ...

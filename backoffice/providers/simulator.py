"""The built-in provider: a card acquirer simulated in our own database, so the flow runs end to end.

It keeps every key it was given in app.provider_simulator_charges (written in a transaction of its
own, as a real acquirer's books are apart from ours), so a second call with a known key returns
the first outcome without charging again, even from another process after a crash.

Outcomes are deterministic, so tests and demos are exact:
- an amount ending in .13 is always declined, `insufficient_funds`, retryable;
- an amount ending in .14 is always declined, `card_expired`, not retryable;
- otherwise a share `decline_rate` of keys is declined, `do_not_honor`, retryable: the draw is a
  hash of (seed, idempotency key), so a retry (a new key) draws again;
- everything else is captured, with a reference `SIM-` followed by 16 hex digits.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.config import get_settings
from backoffice.providers.base import Capture, Decline, ProviderError

ALWAYS_DECLINED = {13: ("insufficient_funds", True), 14: ("card_expired", False)}

_RECORD = sa.text(
    """INSERT INTO app.provider_simulator_charges
           (idempotency_key, dossier_number, amount, currency, outcome, reference, decline_reason, retryable)
       VALUES (:key, :dossier_number, :amount, :currency, :outcome, :reference, :reason, :retryable)
       ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key"""
)


class SimulatorProvider:
    name = "simulator"

    def __init__(self, engine: Engine, *, decline_rate: Decimal | str = "0", seed: int = 0) -> None:
        rate = Decimal(str(decline_rate))
        if not 0 <= rate <= 1:
            raise ValueError(f"decline_rate {rate} is not between 0 and 1")
        self.engine = engine
        self.decline_rate = rate
        self.seed = seed

    @classmethod
    def from_settings(cls, engine: Engine) -> SimulatorProvider:
        """BACKOFFICE_PROVIDER_DECLINE_RATE and BACKOFFICE_PROVIDER_SEED."""
        settings = get_settings()
        return cls(engine, decline_rate=settings.provider_decline_rate, seed=settings.provider_seed)

    def _outcome(self, amount: Decimal, key: str) -> Capture | Decline:
        cents = int((amount * 100) % 100)
        if cents in ALWAYS_DECLINED:
            reason, retryable = ALWAYS_DECLINED[cents]
            return Decline(reason, retryable)
        digest = hashlib.sha256(f"{self.seed}:{key}".encode()).hexdigest()
        if Decimal(int(digest[:16], 16)) / Decimal(2**64) < self.decline_rate:
            return Decline("do_not_honor", True)
        return Capture("SIM-" + hashlib.sha256(f"capture:{key}".encode()).hexdigest()[:16].upper())

    def charge(self, *, dossier_number: str, amount: Decimal, currency: str, idempotency_key: str) -> Capture | Decline:
        outcome = self._outcome(amount, idempotency_key)
        captured = isinstance(outcome, Capture)
        with self.engine.begin() as conn:
            new = conn.execute(
                _RECORD,
                {
                    "key": idempotency_key,
                    "dossier_number": dossier_number,
                    "amount": amount,
                    "currency": currency,
                    "outcome": "captured" if captured else "declined",
                    "reference": outcome.reference if isinstance(outcome, Capture) else None,
                    "reason": None if isinstance(outcome, Capture) else outcome.reason,
                    "retryable": None if isinstance(outcome, Capture) else outcome.retryable,
                },
            ).first()
            if new is not None:
                return outcome
            first = conn.execute(
                sa.text("SELECT * FROM app.provider_simulator_charges WHERE idempotency_key = :key"),
                {"key": idempotency_key},
            ).one()
        if (first.dossier_number, first.amount, first.currency) != (dossier_number, amount, currency):
            raise ProviderError(f"idempotency key {idempotency_key} was used for another charge")
        if first.outcome == "captured":
            return Capture(first.reference)
        return Decline(first.decline_reason, first.retryable)

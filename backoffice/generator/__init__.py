"""Synthetic landing data (bookings, payments, supplier invoices) with its ground truth.

See docs/generator.md for what is produced; the landing contract is shared/contracts/landing.md.
"""

from .engine import GenerationSummary, generate

__all__ = ["GenerationSummary", "generate"]

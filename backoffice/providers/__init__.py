"""Payment providers: what charges a client's card on file (see backoffice.services.balances)."""

from backoffice.providers.base import Capture, Decline, PaymentProvider, ProviderError
from backoffice.providers.simulator import SimulatorProvider

__all__ = ["Capture", "Decline", "PaymentProvider", "ProviderError", "SimulatorProvider"]

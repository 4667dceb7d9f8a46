"""Fixed reference data of the synthetic world: suppliers, brands, agencies, destinations.

Kept as plain tuples so that generation never depends on anything but the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate

# Rough mid-market rates, only used to price sales from purchases: exactness does not matter,
# determinism does.
EUR_PER_UNIT = {
    "EUR": Decimal("1"),
    "USD": Decimal("0.92"),
    "GBP": Decimal("1.17"),
    "CHF": Decimal("1.05"),
    "MAD": Decimal("0.092"),
}


@dataclass(frozen=True)
class Supplier:
    code: str
    name: str
    country: str
    vat_number: str
    iban: str
    currency: str
    payment_terms_days: int
    kind: str  # the service kind it sells
    invoice_format: str  # csv | ubl | facturx
    timing: str  # at_booking | after_service | before_departure
    invoice_vat_rate: str  # VAT rate on its invoices to us
    reference_prefix: str  # how its own booking references start
    per_line: bool  # invoices one line per price line instead of one per service

    @property
    def ledger_account(self) -> str:
        return f"401{self.code}"


SUPPLIERS: tuple[Supplier, ...] = (
    Supplier(
        "SUP0001",
        "Air Horizon",
        "FR",
        "FR40303265045",
        "FR7630006000011234567890189",
        "EUR",
        30,
        "flight",
        "csv",
        "at_booking",
        "0",
        "",
        True,
    ),
    Supplier(
        "SUP0002",
        "Transatlantic Airways Inc.",
        "US",
        "US-EIN-941234567",
        "",
        "USD",
        15,
        "flight",
        "ubl",
        "at_booking",
        "0",
        "",
        True,
    ),
    Supplier(
        "SUP0003",
        "Iberica Vuelos S.A.",
        "ES",
        "ESA28017895",
        "ES9121000418450200051332",
        "EUR",
        30,
        "flight",
        "csv",
        "at_booking",
        "0",
        "",
        True,
    ),
    Supplier(
        "SUP0004",
        "Hôtels Riviera SAS",
        "FR",
        "FR83404833048",
        "FR7614508000401234567890174",
        "EUR",
        45,
        "hotel",
        "facturx",
        "after_service",
        "0.10",
        "HRV-",
        False,
    ),
    Supplier(
        "SUP0005",
        "Britannia Hotel Group plc",
        "GB",
        "GB980780684",
        "GB33BUKB20201555555555",
        "GBP",
        30,
        "hotel",
        "csv",
        "after_service",
        "0",
        "BHG",
        False,
    ),
    Supplier(
        "SUP0006",
        "Riad Atlas SARL",
        "MA",
        "MA-IF-40123456",
        "MA64011519000001205000534921",
        "MAD",
        30,
        "hotel",
        "csv",
        "after_service",
        "0",
        "RA/",
        False,
    ),
    Supplier(
        "SUP0007",
        "Hoteles Sol y Mar S.L.",
        "ES",
        "ESB07123456",
        "ES7620770024003102575766",
        "EUR",
        30,
        "hotel",
        "ubl",
        "after_service",
        "0",
        "SYM-",
        False,
    ),
    Supplier(
        "SUP0008",
        "Hellas Resorts S.A.",
        "GR",
        "EL094014201",
        "GR1601101250000000012300695",
        "EUR",
        30,
        "hotel",
        "csv",
        "after_service",
        "0",
        "HR",
        False,
    ),
    Supplier(
        "SUP0009",
        "Swiss Alpine Rail AG",
        "CH",
        "CHE-116.281.710",
        "CH9300762011623852957",
        "CHF",
        30,
        "transfer",
        "csv",
        "at_booking",
        "0",
        "SAR-",
        True,
    ),
    Supplier(
        "SUP0010",
        "Navettes Azur",
        "FR",
        "FR21512345678",
        "FR7610107001011234567890129",
        "EUR",
        30,
        "transfer",
        "csv",
        "after_service",
        "0.10",
        "NA",
        False,
    ),
    Supplier(
        "SUP0011",
        "Rent Europe GmbH",
        "DE",
        "DE811569869",
        "DE89370400440532013000",
        "EUR",
        30,
        "car",
        "ubl",
        "after_service",
        "0",
        "RE-",
        False,
    ),
    Supplier(
        "SUP0012",
        "Assur'Voyage SA",
        "FR",
        "FR55542107651",
        "FR7630004000031234567890143",
        "EUR",
        30,
        "insurance",
        "facturx",
        "at_booking",
        "0",
        "AV",
        True,
    ),
    Supplier(
        "SUP0013",
        "Excursions Médina",
        "MA",
        "MA-IF-40987654",
        "MA64011519000001205000112233",
        "MAD",
        15,
        "activity",
        "csv",
        "after_service",
        "0",
        "EXM",
        False,
    ),
    Supplier(
        "SUP0014",
        "Activités du Monde",
        "FR",
        "FR12498765432",
        "FR7630003000501234567890185",
        "EUR",
        30,
        "activity",
        "csv",
        "after_service",
        "0.20",
        "ADM-",
        False,
    ),
    Supplier(
        "SUP0015",
        "Mare Nostrum Crociere S.p.A.",
        "IT",
        "IT00743110157",
        "IT60X0542811101000000123456",
        "EUR",
        30,
        "cruise",
        "facturx",
        "before_departure",
        "0",
        "MNC",
        True,
    ),
    Supplier(
        "SUP0016",
        "Circuits Lointains",
        "FR",
        "FR67433221100",
        "FR7617515900000801234567846",
        "EUR",
        30,
        "package",
        "csv",
        "before_departure",
        "0",
        "CL-",
        True,
    ),
    Supplier(
        "SUP0017",
        "Thai Discovery Co. Ltd",
        "TH",
        "TH0105551234567",
        "",
        "USD",
        15,
        "package",
        "csv",
        "before_departure",
        "0",
        "TDX",
        True,
    ),
    Supplier(
        "SUP0018",
        "Big Apple Hotels LLC",
        "US",
        "US-EIN-133456789",
        "",
        "USD",
        30,
        "hotel",
        "csv",
        "after_service",
        "0",
        "BAH",
        False,
    ),
)
SUPPLIER_BY_CODE = {s.code: s for s in SUPPLIERS}


@dataclass(frozen=True)
class Brand:
    name: str
    language: str  # language of most of its clients
    currency: str
    provider: str  # card acquirer


BRANDS: tuple[Brand, ...] = (
    Brand("Évasia Voyages", "fr", "EUR", "adyen"),
    Brand("Soléo Vacances", "fr", "EUR", "stripe"),
    Brand("Cap Nord Travel", "fr", "EUR", "adyen"),
    Brand("Sunway Holidays", "en", "GBP", "stripe"),
)
# Cumulative weights: random.choices is much faster given them ready-made.
BRAND_CUM = tuple(accumulate((40, 30, 18, 12)))

AGENCY_CODES = tuple(f"AG{n:04d}" for n in (12, 47, 103, 118, 204, 233, 310, 377, 402, 455, 512, 590, 618, 731))
PARTNER_CODES = ("PT-VENTEPRIVEE", "PT-CE-AIRBUS", "PT-COMITE-SNCF", "PT-LASTMINUTE")
CHANNELS = ("web", "agency", "call_center", "partner")
CHANNEL_CUM = tuple(accumulate((50, 25, 15, 10)))


@dataclass(frozen=True)
class Destination:
    city: str
    country: str
    flight: str  # airline supplier code, empty when reached by rail
    hotel: str
    activity: str
    transfer: str
    package: str  # tour operator for packaged trips, empty if none


DESTINATIONS: tuple[Destination, ...] = (
    Destination("Barcelone", "ES", "SUP0003", "SUP0007", "SUP0014", "SUP0010", ""),
    Destination("Palma de Majorque", "ES", "SUP0003", "SUP0007", "SUP0014", "SUP0010", ""),
    Destination("Nice", "FR", "SUP0001", "SUP0004", "SUP0014", "SUP0010", ""),
    Destination("Ajaccio", "FR", "SUP0001", "SUP0004", "SUP0014", "SUP0010", ""),
    Destination("Athènes", "GR", "SUP0001", "SUP0008", "SUP0014", "SUP0010", ""),
    Destination("Santorin", "GR", "SUP0001", "SUP0008", "SUP0014", "SUP0010", "SUP0016"),
    Destination("Londres", "GB", "SUP0001", "SUP0005", "SUP0014", "SUP0010", ""),
    Destination("Édimbourg", "GB", "SUP0001", "SUP0005", "SUP0014", "SUP0010", ""),
    Destination("Marrakech", "MA", "SUP0001", "SUP0006", "SUP0013", "SUP0010", "SUP0016"),
    Destination("Essaouira", "MA", "SUP0001", "SUP0006", "SUP0013", "SUP0010", ""),
    Destination("New York", "US", "SUP0002", "SUP0018", "SUP0014", "SUP0010", ""),
    Destination("Zermatt", "CH", "", "SUP0004", "SUP0014", "SUP0009", ""),
    Destination("Bangkok", "TH", "SUP0002", "SUP0018", "SUP0014", "SUP0010", "SUP0017"),
    Destination("Lisbonne", "PT", "SUP0003", "SUP0007", "SUP0014", "SUP0010", ""),
    Destination("Méditerranée (croisière)", "IT", "SUP0001", "", "SUP0014", "SUP0010", ""),
)
DESTINATION_CUM = tuple(accumulate((10, 6, 9, 5, 6, 6, 7, 3, 9, 3, 5, 4, 4, 6, 5)))
CRUISE_DESTINATION = "Méditerranée (croisière)"

# Sale VAT rate per service kind, as the platform sends it (strings, never floats).
SALE_VAT_RATE = {
    "flight": "0",
    "hotel": "0.10",
    "transfer": "0.10",
    "car": "0.20",
    "insurance": "0",
    "activity": "0.20",
    "cruise": "0",
    "package": "0.20",
}

INSURANCE_SUPPLIER = "SUP0012"
CAR_SUPPLIER = "SUP0011"
CRUISE_SUPPLIER = "SUP0015"

# Our own identity, as suppliers address their invoices to us.
BUYER_NAME = "Voyages Back-Office SAS"
BUYER_ACCOUNT = "TRAVELCO"
BUYER_VAT = "FR32123456789"


def supplier_rows() -> list[list[str]]:
    """Rows of reference/suppliers.csv, in supplier_code order."""
    return [
        [s.code, s.name, s.country, s.vat_number, s.iban, s.currency, str(s.payment_terms_days), s.ledger_account]
        for s in SUPPLIERS
    ]


SUPPLIER_COLUMNS = [
    "supplier_code",
    "name",
    "country",
    "vat_number",
    "iban",
    "currency",
    "payment_terms_days",
    "ledger_account",
]

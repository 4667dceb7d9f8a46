"""Clients and travellers.

Own name lists rather than Faker: generating a million dossiers with Faker providers costs
minutes on its own, and plain lists keep the output stable across library upgrades.
"""

from __future__ import annotations

import random
import unicodedata

from .draw import between, pick

FR_FIRST = (
    "Jean",
    "Marie",
    "Pierre",
    "Camille",
    "Louis",
    "Léa",
    "Hugo",
    "Chloé",
    "Lucas",
    "Manon",
    "Nicolas",
    "Émilie",
    "Julien",
    "Sophie",
    "Thomas",
    "Julie",
    "Antoine",
    "Inès",
    "Mathieu",
    "Clémence",
    "François",
    "Hélène",
    "Gaëlle",
    "Benoît",
    "Aurélie",
    "Olivier",
    "Céline",
    "Stéphane",
    "Nathalie",
    "Théo",
    "Zoé",
    "Maël",
    "Anaïs",
    "Rémi",
    "Élodie",
    "Jérôme",
)
FR_LAST = (
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Lefebvre",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martinez",
    "Le Gall",
    "Nguyen",
    "Da Silva",
    "Benali",
    "Müller",
    "Rousseau",
    "Blanc",
    "Guérin",
    "Chevalier",
    "Faure",
)
EN_FIRST = (
    "James",
    "Oliver",
    "Emily",
    "Charlotte",
    "Harry",
    "Amelia",
    "George",
    "Isla",
    "Jack",
    "Sophie",
    "William",
    "Grace",
    "Thomas",
    "Olivia",
    "Daniel",
    "Emma",
    "Michael",
    "Lucy",
)
EN_LAST = (
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "O'Brien",
    "Murphy",
    "Clarke",
)
FR_STREETS = (
    "rue de la République",
    "avenue Jean Jaurès",
    "rue Victor Hugo",
    "boulevard Gambetta",
    "rue des Lilas",
    "place de la Mairie",
    "chemin des Vignes",
    "allée des Tilleuls",
    "rue du Général de Gaulle",
    "impasse des Roses",
)
EN_STREETS = (
    "High Street",
    "Station Road",
    "Church Lane",
    "Victoria Road",
    "King Street",
    "Park Avenue",
    "Mill Lane",
    "Queen's Road",
)
# (postal code, city, country)
FR_CITIES = (
    ("75011", "Paris", "FR"),
    ("69003", "Lyon", "FR"),
    ("13008", "Marseille", "FR"),
    ("31000", "Toulouse", "FR"),
    ("33000", "Bordeaux", "FR"),
    ("44000", "Nantes", "FR"),
    ("59000", "Lille", "FR"),
    ("67000", "Strasbourg", "FR"),
    ("35000", "Rennes", "FR"),
    ("06000", "Nice", "FR"),
    ("1050", "Bruxelles", "BE"),
    ("1204", "Genève", "CH"),
    ("97400", "Saint-Denis", "FR"),
)
EN_CITIES = (
    ("SW1A 1AA", "London", "GB"),
    ("M1 1AE", "Manchester", "GB"),
    ("EH1 1YZ", "Edinburgh", "GB"),
    ("BS1 4DJ", "Bristol", "GB"),
    ("D02 X285", "Dublin", "IE"),
    ("10001", "New York", "US"),
)
EMAIL_DOMAINS = ("gmail.com", "orange.fr", "free.fr", "yahoo.fr", "outlook.com", "laposte.net", "hotmail.com")


def ascii_fold(text: str) -> str:
    """Drop accents and anything outside [a-z0-9.-], for e-mail addresses."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "".join(c for c in folded if c.isalnum() or c in ".-")


def make_client(client_seed: str, language: str) -> dict:
    """A client is derived from its own seed, so a returning client looks the same every time."""
    rng = random.Random(client_seed)
    if language == "fr":
        first, last = pick(rng, FR_FIRST), pick(rng, FR_LAST)
        title = pick(rng, ("M.", "Mme"))
        street = f"{between(rng, 1, 180)} {pick(rng, FR_STREETS)}"
        postal, city, country = pick(rng, FR_CITIES)
        phone = f"+33 6 {between(rng, 10, 99)} {between(rng, 10, 99)} {between(rng, 10, 99)} {between(rng, 10, 99)}"
    else:
        first, last = pick(rng, EN_FIRST), pick(rng, EN_LAST)
        title = pick(rng, ("Mr", "Mrs", "Ms"))
        street = f"{between(rng, 1, 180)} {pick(rng, EN_STREETS)}"
        postal, city, country = pick(rng, EN_CITIES)
        phone = f"+44 7{between(rng, 100, 999)} {between(rng, 100000, 999999)}"
    email = f"{ascii_fold(first)}.{ascii_fold(last)}{between(rng, 1, 99)}@{pick(rng, EMAIL_DOMAINS)}"
    return {
        "title": title,
        "first_name": first,
        "last_name": last,
        "email": email,
        "phone": phone,
        "language": language,
        "address": {"line1": street, "postal_code": postal, "city": city, "country": country},
    }


def first_name(rng: random.Random, language: str) -> str:
    return pick(rng, FR_FIRST if language == "fr" else EN_FIRST)

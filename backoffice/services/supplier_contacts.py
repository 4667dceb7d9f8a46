"""Supplier contacts: the address and language a supplier's mails use (modifications, cancellations).

The suppliers reference file has no address, so people keep it here; ingestion never overwrites
it. An edit is guarded by `contact_version`, so two people editing the same supplier cannot lose
one another's change silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import sqlalchemy as sa

from backoffice.domain.errors import DomainError, InvalidInput, NotFound, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.mail.outbox import validate_address
from backoffice.services import audit, idempotency
from backoffice.services.unit_of_work import UnitOfWork

ACTION = "set_supplier_contact"
PERMISSION = "manage_suppliers"
LANGUAGES = ("fr", "en")


@dataclass(frozen=True)
class SupplierContact:
    supplier_code: str
    name: str
    country: str
    email: str | None
    language: str
    contact_version: int


_SELECT = "SELECT supplier_code, name, country, email, language, contact_version FROM app.suppliers"


def list_supplier_contacts(uow: UnitOfWork, actor: Actor) -> list[SupplierContact]:
    """Every supplier with its contact, those without an address first (they need one)."""
    audit.require(uow.engine, actor, PERMISSION, "list_supplier_contacts")
    rows = uow.conn.execute(sa.text(f"{_SELECT} ORDER BY email IS NOT NULL, supplier_code")).mappings()
    return [SupplierContact(**r) for r in rows]


def _refuse(uow: UnitOfWork, actor: Actor, error: DomainError) -> NoReturn:
    audit.record_apart(uow.engine, actor.login, ACTION, outcome="refused", detail=str(error))
    raise error


def set_supplier_contact(
    uow: UnitOfWork,
    actor: Actor,
    *,
    supplier_code: str,
    email: str | None,
    language: str,
    expected_version: int,
    idempotency_key: str,
) -> SupplierContact:
    """Set (or clear, with an empty `email`) where the supplier's mails go, and in which language."""
    audit.require(uow.engine, actor, PERMISSION, ACTION)
    try:
        code = supplier_code.strip().upper() if isinstance(supplier_code, str) else ""
        if not code:
            raise InvalidInput("supplier_code", "is required")
        address = validate_address(email, "email") if isinstance(email, str) and email.strip() else None
        if language not in LANGUAGES:
            raise InvalidInput("language", f"{language!r} is not one of {', '.join(LANGUAGES)}")
    except InvalidInput as error:
        _refuse(uow, actor, error)
    request = {"supplier_code": code, "email": address, "language": language, "expected_version": expected_version}
    earlier = idempotency.claim(uow.conn, idempotency_key, ACTION, request, actor.login)
    if earlier is not None:
        return _load(uow, code)
    before = uow.conn.execute(sa.text(f"{_SELECT} WHERE supplier_code = :c FOR UPDATE"), {"c": code}).first()
    if before is None:
        _refuse(uow, actor, NotFound(f"supplier {code} does not exist"))
    if before.contact_version != expected_version:
        _refuse(uow, actor, StaleVersion(f"supplier {code}'s contact", expected_version, before.contact_version))
    uow.conn.execute(
        sa.text(
            """UPDATE app.suppliers SET email = :email, language = :language, contact_version = contact_version + 1
               WHERE supplier_code = :c"""
        ),
        {"c": code, "email": address, "language": language},
    )
    audit.record(
        uow.conn,
        actor.login,
        ACTION,
        before={"supplier_code": code, "email": before.email, "language": before.language},
        after={"supplier_code": code, "email": address, "language": language},
    )
    idempotency.store(uow.conn, idempotency_key, {"supplier_code": code})
    uow.commit()
    return _load(uow, code)


def _load(uow: UnitOfWork, code: str) -> SupplierContact:
    return SupplierContact(
        **uow.conn.execute(sa.text(f"{_SELECT} WHERE supplier_code = :c"), {"c": code}).mappings().one()
    )

"""Saved searches: own, shared with a role, built-ins; permissions and audit."""

from __future__ import annotations

import uuid

import factories as f
import pytest
import sqlalchemy as sa

from backoffice.domain.errors import InvalidInput, NotFound, PermissionDenied
from backoffice.domain.permissions import Actor
from backoffice.queries.criteria import SearchCriteria
from backoffice.queries.shortcuts import SHORTCUTS
from backoffice.services.saved_searches import delete_search, list_searches, save_search
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor


def actor(engine: sa.Engine, login: str, role: str) -> Actor:
    f.user(engine, login, role)
    with UnitOfWork(engine) as uow:
        return load_actor(uow, login)


def key() -> str:
    return uuid.uuid4().hex


CRITERIA = SearchCriteria(statuses=("option",), client_name="Dupont", departure_within_days=14)


def test_save_then_list_own_shared_and_builtin(db: sa.Engine) -> None:
    senior = actor(db, "sam", "senior_agent")
    agent = actor(db, "alice", "agent")
    other_agent = actor(db, "anna", "agent")
    with UnitOfWork(db) as uow:
        mine = save_search(
            uow, agent, "Mes options", CRITERIA, sort="sale_total", descending=True, idempotency_key=key()
        )
        save_search(
            uow, senior, "Urgent", SearchCriteria(balance_unpaid=True), shared_with_role="agent", idempotency_key=key()
        )
        save_search(uow, senior, "Private", SearchCriteria(), idempotency_key=key())
        save_search(uow, other_agent, "Anna's", SearchCriteria(), idempotency_key=key())
    with UnitOfWork(db) as uow:
        listed = list_searches(uow, agent)
    assert [(s.name, s.owner) for s in listed if not s.builtin] == [("Mes options", "alice"), ("Urgent", "sam")]
    assert [s.key for s in listed if s.builtin] == [s.key for s in SHORTCUTS]
    assert listed[0] == mine
    assert (mine.criteria, mine.sort, mine.descending) == (CRITERIA, "sale_total", True)
    with db.connect() as conn:
        actions = conn.execute(sa.text("SELECT actor, action FROM audit.events WHERE action='save_search'")).all()
    assert len(actions) == 4


def test_sharing_needs_the_permission_and_refusal_is_audited(db: sa.Engine) -> None:
    agent = actor(db, "alice", "agent")
    with UnitOfWork(db) as uow, pytest.raises(PermissionDenied):
        save_search(uow, agent, "Team", CRITERIA, shared_with_role="agent", idempotency_key=key())
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.saved_searches")).scalar_one() == 0
        refused = conn.execute(sa.text("SELECT actor FROM audit.events WHERE outcome='refused'")).scalars().all()
    assert refused == ["alice"]


def test_same_key_saves_once_and_duplicate_names_are_refused(db: sa.Engine) -> None:
    agent = actor(db, "alice", "agent")
    k = key()
    with UnitOfWork(db) as uow:
        first = save_search(uow, agent, "Mine", CRITERIA, idempotency_key=k)
        again = save_search(uow, agent, "Mine", CRITERIA, idempotency_key=k)
    assert first == again
    with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as error:
        save_search(uow, agent, "Mine", SearchCriteria(), idempotency_key=key())
    assert error.value.field == "name"


@pytest.mark.parametrize(
    ("name", "criteria", "extra", "field"),
    [
        (" ", CRITERIA, {}, "name"),
        ("x", SearchCriteria(statuses=("lost",)), {}, "statuses"),
        ("x", CRITERIA, {"sort": "password_hash"}, "sort"),
    ],
)
def test_bad_input_names_the_field(
    db: sa.Engine, name: str, criteria: SearchCriteria, extra: dict[str, str], field: str
) -> None:
    agent = actor(db, "alice", "agent")
    with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as error:
        save_search(uow, agent, name, criteria, idempotency_key=key(), **extra)
    assert error.value.field == field


def test_delete_only_my_own(db: sa.Engine) -> None:
    senior = actor(db, "sam", "senior_agent")
    agent = actor(db, "alice", "agent")
    with UnitOfWork(db) as uow:
        shared = save_search(uow, senior, "Urgent", CRITERIA, shared_with_role="agent", idempotency_key=key())
    with UnitOfWork(db) as uow, pytest.raises(NotFound):
        delete_search(uow, agent, shared.id, idempotency_key=key())
    assert shared.id is not None
    with UnitOfWork(db) as uow:
        delete_search(uow, senior, shared.id, idempotency_key=key())
    with UnitOfWork(db) as uow:
        assert all(s.builtin for s in list_searches(uow, agent))
    with db.connect() as conn:
        outcomes = conn.execute(
            sa.text("SELECT actor, outcome FROM audit.events WHERE action='delete_search' ORDER BY id")
        ).all()
    assert [tuple(o) for o in outcomes] == [("alice", "refused"), ("sam", "done")]

"""Saved searches: own, shared with a role, built-ins; permissions and audit."""

from __future__ import annotations

import uuid

import factories as f
import pytest
import sqlalchemy as sa

from backoffice.domain.errors import IdempotencyConflict, InvalidInput, NotFound, PermissionDenied, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.queries.criteria import SearchCriteria
from backoffice.queries.shortcuts import SHORTCUTS
from backoffice.services.saved_searches import delete_search, list_searches, save_search, update_search
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


def test_update_renames_replaces_and_shares(db: sa.Engine) -> None:
    senior = actor(db, "sam", "senior_agent")
    agent = actor(db, "alice", "agent")
    with UnitOfWork(db) as uow:
        saved = save_search(uow, senior, "Urgent", CRITERIA, idempotency_key=key())
    wider = SearchCriteria(statuses=("option", "confirmed"), balance_unpaid=True)
    with UnitOfWork(db) as uow:
        updated = update_search(
            uow,
            senior,
            saved.id,
            name="Urgent (équipe)",
            criteria=wider,
            sort="sale_total",
            descending=True,
            shared_with_role="agent",
            expected_version=saved.version,
            idempotency_key=key(),
        )
    assert (updated.name, updated.criteria, updated.sort, updated.descending) == (
        "Urgent (équipe)",
        wider,
        "sale_total",
        True,
    )
    assert (updated.shared_with_role, updated.version) == ("agent", saved.version + 1)
    with UnitOfWork(db) as uow:
        assert [s.name for s in list_searches(uow, agent) if not s.builtin] == ["Urgent (équipe)"]
    with db.connect() as conn:
        event = conn.execute(sa.text("SELECT before, after FROM audit.events WHERE action = 'update_search'")).one()
    assert (event.before["name"], event.after["name"]) == ("Urgent", "Urgent (équipe)")


def test_update_refuses_stale_foreign_taken_and_replayed_keys(db: sa.Engine) -> None:
    senior = actor(db, "sam", "senior_agent")
    agent = actor(db, "alice", "agent")
    with UnitOfWork(db) as uow:
        first = save_search(uow, agent, "First", CRITERIA, idempotency_key=key())
        save_search(uow, agent, "Second", CRITERIA, idempotency_key=key())
        theirs = save_search(uow, senior, "Theirs", CRITERIA, idempotency_key=key())
    same = {"criteria": CRITERIA, "sort": "departure_date", "descending": False, "shared_with_role": None}
    k = key()
    with UnitOfWork(db) as uow:
        renamed = update_search(uow, agent, first.id, name="Renamed", expected_version=1, idempotency_key=k, **same)
        # the same request again (a double click) is the same result, not a stale refusal
        again = update_search(uow, agent, first.id, name="Renamed", expected_version=1, idempotency_key=k, **same)
    assert renamed == again and renamed.version == 2
    with UnitOfWork(db) as uow, pytest.raises(IdempotencyConflict):
        update_search(uow, agent, first.id, name="Other", expected_version=1, idempotency_key=k, **same)
    with UnitOfWork(db) as uow, pytest.raises(StaleVersion):
        update_search(uow, agent, first.id, name="Late", expected_version=1, idempotency_key=key(), **same)
    with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as taken:
        update_search(uow, agent, first.id, name="Second", expected_version=2, idempotency_key=key(), **same)
    assert taken.value.field == "name"
    with UnitOfWork(db) as uow, pytest.raises(NotFound):
        update_search(uow, agent, theirs.id, name="Mine now", expected_version=1, idempotency_key=key(), **same)
    with UnitOfWork(db) as uow, pytest.raises(PermissionDenied):
        update_search(
            uow,
            agent,
            first.id,
            name="Team",
            expected_version=2,
            idempotency_key=key(),
            **{**same, "shared_with_role": "agent"},
        )
    with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as role:
        update_search(
            uow,
            senior,
            theirs.id,
            name="T",
            expected_version=1,
            idempotency_key=key(),
            **{**same, "shared_with_role": "pilot"},
        )
    assert role.value.field == "shared_with_role"
    with db.connect() as conn:
        outcomes = conn.execute(
            sa.text("SELECT outcome, count(*) FROM audit.events WHERE action = 'update_search' GROUP BY 1")
        ).all()
        names = conn.execute(sa.text("SELECT name FROM app.saved_searches ORDER BY id")).scalars().all()
    assert dict(outcomes) == {"done": 1, "refused": 5}
    assert names == ["Renamed", "Second", "Theirs"]

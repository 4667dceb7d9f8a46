"""Idempotency keys: same key and request returns the first result; other arguments are refused."""

import pytest
import sqlalchemy as sa

from backoffice.domain.errors import IdempotencyConflict
from backoffice.services import idempotency
from backoffice.services.unit_of_work import UnitOfWork


def test_same_key_same_request_returns_the_first_result(db: sa.Engine) -> None:
    with UnitOfWork(db) as uow:
        assert idempotency.claim(uow.conn, "k1", "refund", {"amount": "10.00"}, "alice") is None
        idempotency.store(uow.conn, "k1", {"refund_id": 7})
        uow.commit()
    with UnitOfWork(db) as uow:
        assert idempotency.claim(uow.conn, "k1", "refund", {"amount": "10.00"}, "alice") == {"refund_id": 7}


def test_same_key_other_arguments_is_refused(db: sa.Engine) -> None:
    with UnitOfWork(db) as uow:
        idempotency.claim(uow.conn, "k2", "refund", {"amount": "10.00"}, "alice")
        uow.commit()
    with UnitOfWork(db) as uow, pytest.raises(IdempotencyConflict):
        idempotency.claim(uow.conn, "k2", "refund", {"amount": "99.00"}, "alice")


def test_a_rolled_back_action_releases_its_key(db: sa.Engine) -> None:
    with UnitOfWork(db) as uow:
        idempotency.claim(uow.conn, "k3", "refund", {"amount": "10.00"}, "alice")
        # no commit: the action failed
    with UnitOfWork(db) as uow:
        assert idempotency.claim(uow.conn, "k3", "refund", {"amount": "10.00"}, "alice") is None

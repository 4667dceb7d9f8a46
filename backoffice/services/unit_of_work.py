"""A unit of work: one database transaction that a service commits explicitly.

Leaving the block without `commit()` rolls back, so an exception half-way writes nothing.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from backoffice.db.roles import act_as_app
from backoffice.domain.periods import PERIOD_CLOSED_SQLSTATE, PeriodClosed


class UnitOfWork:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    def __enter__(self) -> UnitOfWork:
        self._conn = self.engine.connect()
        self._conn.begin()
        act_as_app(self._conn)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._conn is not None
        if self._conn.in_transaction():
            self._conn.rollback()
        self._conn.close()
        self._conn = None
        # The database refused a posting dated in a closed period: say so in the domain's words.
        if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == PERIOD_CLOSED_SQLSTATE:
            raise PeriodClosed(str(getattr(exc.orig.diag, "message_primary", None) or exc.orig)) from exc

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("UnitOfWork used outside its 'with' block")
        return self._conn

    def commit(self) -> None:
        self.conn.commit()
        self.conn.begin()
        act_as_app(self.conn)

    def rollback(self) -> None:
        self.conn.rollback()
        self.conn.begin()
        act_as_app(self.conn)

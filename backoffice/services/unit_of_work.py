"""A unit of work: one database transaction that a service commits explicitly.

Leaving the block without `commit()` rolls back, so an exception half-way writes nothing.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from backoffice.db.roles import act_as_app
from backoffice.domain.errors import ConcurrentConflict, DatabaseInterrupted
from backoffice.domain.periods import PERIOD_CLOSED_SQLSTATE, PeriodClosed

# The server went away: connection exceptions (class 08) and an administrator's or a shutdown's
# termination of the session (57P01-57P03). Other OperationalErrors (deadlock, lock timeout,
# cancelled query) are not losses of the connection and keep their own meaning.
_CONNECTION_LOST_SQLSTATES = ("57P01", "57P02", "57P03")


def connection_lost(exc: BaseException | None) -> bool:
    """Whether `exc` says the database connection was lost (rather than a refused statement)."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is None:  # raised by the client library: no server answer at all
        return isinstance(exc, sa_exc.OperationalError)
    return sqlstate.startswith("08") or sqlstate in _CONNECTION_LOST_SQLSTATES


CONFLICT_SQLSTATES = ("40P01", "40001")  # deadlock detected, serialization failure


class UnitOfWork:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    def __enter__(self) -> UnitOfWork:
        try:
            self._conn = self.engine.connect()
            self._conn.begin()
            act_as_app(self._conn)
        except DBAPIError as exc:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if connection_lost(exc):
                raise DatabaseInterrupted() from exc
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._conn is not None
        lost = connection_lost(exc)
        try:
            if self._conn.in_transaction():
                self._conn.rollback()
            self._conn.close()
        except DBAPIError as cleanup:
            # A dead connection cannot roll back; the server already has. When the block had
            # finished (what it committed is in, the rest it meant to drop), losing the connection
            # now loses nothing: the caller gets its result. Anything else is news.
            if not (lost or (exc is None and connection_lost(cleanup))):
                raise
        self._conn = None
        if lost:
            raise DatabaseInterrupted() from exc
        # PostgreSQL broke a deadlock or a serialisation conflict by aborting this action: a retry's business.
        if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in CONFLICT_SQLSTATES:
            raise ConcurrentConflict() from exc
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

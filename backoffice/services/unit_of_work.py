"""A unit of work: one database transaction that a service commits explicitly.

Leaving the block without `commit()` rolls back, so an exception half-way writes nothing.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.engine import Connection, Engine


class UnitOfWork:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    def __enter__(self) -> UnitOfWork:
        self._conn = self.engine.connect()
        self._conn.begin()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._conn is not None
        if self._conn.in_transaction():
            self._conn.rollback()
        self._conn.close()
        self._conn = None

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("UnitOfWork used outside its 'with' block")
        return self._conn

    def commit(self) -> None:
        self.conn.commit()
        self.conn.begin()

    def rollback(self) -> None:
        self.conn.rollback()
        self.conn.begin()

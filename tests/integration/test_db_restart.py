"""PostgreSQL restarted under agents' feet: every action is fully applied or fully absent, the
interrupted one says so in words (DatabaseInterrupted), and its retry with the same idempotency key
has exactly one effect, even when the commit had landed before the connection dropped.

The server here is one of the test's own, in tmp_path: the shared test server is never restarted.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import factories as f
import pytest
import sqlalchemy as sa
import streamlit as st
from sqlalchemy.engine import Engine

from backoffice.db import embedded
from backoffice.db.engine import create_engine
from backoffice.db.migrate import migrate
from backoffice.domain.errors import DatabaseInterrupted
from backoffice.domain.permissions import Actor
from backoffice.services.payments import record_payment
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor

AGENTS = 4
PAYMENTS_PER_AGENT = 12
RESTARTS = 3
UI_RECORD = "FormSubmitter:record_payment-Record the payment"


@dataclass
class OwnServer:
    pgdata: Path
    url: str
    owner: Engine  # sets up and inspects
    app: Engine  # what the services get, as in production: acts as the application's role


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnServer]:
    pgdata = tmp_path_factory.mktemp("restart") / "pgdata"
    server, _ = embedded.ensure_running(pgdata)
    real = server.pgdata  # may live under /var/lib/backoffice when tmp_path is private to root
    url = server.url()
    migrate(url)
    owner, app = create_engine(url, as_app=False), create_engine(url)
    try:
        yield OwnServer(pgdata, url, owner, app)
    finally:
        owner.dispose()
        app.dispose()
        embedded.stop(pgdata)
        shutil.rmtree(real, ignore_errors=True)
        real.parent.joinpath(f"{real.name}.credentials").unlink(missing_ok=True)


def restart(server: OwnServer, down_for: float) -> None:
    """A fast shutdown (sessions terminated, transactions rolled back), a pause, a start."""
    embedded.stop(server.pgdata)
    time.sleep(down_for)
    embedded.ensure_running(server.pgdata)


def kill_session(server: OwnServer, conn: sa.Connection) -> None:
    """End `conn`'s server session from outside, as a restart would, and wait until it is gone."""
    pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
    with server.owner.connect() as killer:
        killer.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})


def agent(server: OwnServer, login: str) -> Actor:
    f.user(server.owner, login, "agent")
    with UnitOfWork(server.app) as uow:
        return load_actor(uow, login)


def pay(server: OwnServer, who: Actor, number: str, expected_version: int, key: str) -> str:
    with UnitOfWork(server.app) as uow:
        return record_payment(
            uow,
            who,
            dossier_number=number,
            method="cheque",
            amount="10.00",
            reference=key,
            expected_version=expected_version,
            idempotency_key=key,
        )


@dataclass
class Tally:
    succeeded: dict[str, str] = field(default_factory=dict)  # key -> payment id
    interrupted: int = 0
    other_errors: list[BaseException] = field(default_factory=list)


def _agent_loop(server: OwnServer, who: Actor, number: str, tally: Tally, lock: threading.Lock) -> None:
    """One agent paying PAYMENTS_PER_AGENT times into one dossier; an interrupted payment is
    retried with the same key and the same version it was made against, as the form does."""
    version = 1
    for n in range(PAYMENTS_PER_AGENT):
        key = f"{number}-{n}"
        deadline = time.monotonic() + 60
        while True:
            try:
                payment_id = pay(server, who, number, version, key)
            except DatabaseInterrupted as exc:
                assert str(exc) == "the database connection was lost: nothing was saved, retry"
                with lock:
                    tally.interrupted += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            except BaseException as exc:
                with lock:
                    tally.other_errors.append(exc)
                return
            break
        with lock:
            tally.succeeded[key] = payment_id
        version += 1
        time.sleep(0.02)  # spread the payments over the restarts


def _state(server: OwnServer) -> dict[str, Any]:
    with server.owner.connect() as conn:
        return {
            "payments": [
                tuple(r)
                for r in conn.execute(
                    sa.text("SELECT provider_reference, payment_id, dossier_number, amount FROM app.payments")
                )
            ],
            "versions": dict(conn.execute(sa.text("SELECT dossier_number, version FROM app.dossiers")).all()),
            "keys": dict(conn.execute(sa.text("SELECT key, result->>'payment_id' FROM app.idempotency_keys")).all()),
            "done": [
                tuple(r)
                for r in conn.execute(
                    sa.text(
                        """SELECT after->>'payment_id', dossier_number, (after->>'version')::int FROM audit.events
                           WHERE action = 'record_payment' AND outcome = 'done'"""
                    )
                )
            ],
        }


def test_payments_survive_server_restarts_each_fully_applied_or_absent(own_server: OwnServer) -> None:
    dossiers = [f.dossier(own_server.owner) for _ in range(AGENTS)]
    agents = [agent(own_server, f"restart_agent{i}") for i in range(AGENTS)]
    tally, lock = Tally(), threading.Lock()
    threads = [
        threading.Thread(target=_agent_loop, args=(own_server, who, number, tally, lock), daemon=True)
        for who, number in zip(agents, dossiers, strict=True)
    ]
    for thread in threads:
        thread.start()
    for _ in range(RESTARTS):
        time.sleep(0.15)
        restart(own_server, down_for=0.3)
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)

    assert tally.other_errors == []
    assert tally.interrupted > 0, "no action was interrupted: the restarts missed the agents"
    state = _state(own_server)
    keys = {f"{number}-{n}" for number in dossiers for n in range(PAYMENTS_PER_AGENT)}
    assert set(tally.succeeded) == keys
    # One payment per key, the one its caller was given, and the key's stored result names it.
    assert sorted(state["payments"]) == sorted(
        (key, payment_id, key.rsplit("-", 1)[0], Decimal("10.00")) for key, payment_id in tally.succeeded.items()
    )
    assert {k: v for k, v in state["keys"].items() if k in keys} == tally.succeeded
    # Each dossier moved once per successful payment, and each payment has its one audit event.
    assert state["versions"] == {number: 1 + PAYMENTS_PER_AGENT for number in dossiers}
    assert sorted(state["done"]) == sorted(
        (payment_id, key.rsplit("-", 1)[0], int(key.rsplit("-", 1)[1]) + 2)
        for key, payment_id in tally.succeeded.items()
    )


def test_a_connection_lost_after_the_commit_landed_is_retried_to_one_payment(own_server: OwnServer) -> None:
    """The commit reaches the server, then the session is killed before the client hears back:
    the caller sees DatabaseInterrupted, and the retry with the same key returns the same payment."""
    number = f.dossier(own_server.owner)
    who = agent(own_server, "restart_late_agent")
    armed = {"after_commit": False, "killed": 0}

    def on_commit(conn: sa.Connection) -> None:
        armed["after_commit"] = True

    def before_execute(conn: sa.Connection, cursor: Any, statement: str, *args: Any) -> None:
        # The first statement after the commit (the next transaction's SET LOCAL ROLE): kill the
        # session from outside, as a server restart would, before the client reads its answer.
        if armed["after_commit"] and statement.startswith("SET LOCAL ROLE"):
            armed["after_commit"] = False
            kill_session(own_server, conn)
            armed["killed"] += 1

    sa.event.listen(own_server.app, "commit", on_commit)
    sa.event.listen(own_server.app, "before_cursor_execute", before_execute)
    try:
        with pytest.raises(DatabaseInterrupted, match="nothing was saved, retry"):
            pay(own_server, who, number, 1, "late-commit")
    finally:
        sa.event.remove(own_server.app, "commit", on_commit)
        sa.event.remove(own_server.app, "before_cursor_execute", before_execute)
    assert armed["killed"] == 1

    with own_server.owner.connect() as conn:
        landed = conn.execute(
            sa.text("SELECT payment_id FROM app.payments WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()  # the commit had landed
    assert pay(own_server, who, number, 1, "late-commit") == landed
    with own_server.owner.connect() as conn:
        payments = conn.execute(
            sa.text("SELECT count(*) FROM app.payments WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()
        version = conn.execute(
            sa.text("SELECT version FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()
    assert (payments, version) == (1, 2)


def test_a_connection_lost_once_the_action_returned_loses_nothing_and_raises_nothing(own_server: OwnServer) -> None:
    """The payment is committed and the service has returned; the session dies before the unit of
    work's closing rollback (a restart at that instant: seen once in CI as a raw OperationalError
    out of the restart test above). The caller gets its payment, not an error."""
    number = f.dossier(own_server.owner)
    who = agent(own_server, "restart_after_agent")
    armed = {"after_commit": False, "killed": 0}

    def on_commit(conn: sa.Connection) -> None:
        armed["after_commit"] = True

    def on_rollback(conn: sa.Connection) -> None:
        # The unit of work's closing rollback, after the service's commit: kill the session first.
        if armed["after_commit"]:
            armed["after_commit"] = False
            kill_session(own_server, conn)
            armed["killed"] += 1

    sa.event.listen(own_server.app, "commit", on_commit)
    sa.event.listen(own_server.app, "rollback", on_rollback)
    try:
        payment_id = pay(own_server, who, number, 1, "after-return")
    finally:
        sa.event.remove(own_server.app, "commit", on_commit)
        sa.event.remove(own_server.app, "rollback", on_rollback)
    assert armed["killed"] == 1
    with own_server.owner.connect() as conn:
        assert conn.execute(
            sa.text("SELECT payment_id FROM app.payments WHERE dossier_number = :n"), {"n": number}
        ).scalars().all() == [payment_id]
    assert pay(own_server, who, number, 2, "after-return-next").startswith("MAN-")  # the pool recovered


def test_an_action_while_the_server_is_down_is_refused_in_words_and_writes_nothing(own_server: OwnServer) -> None:
    number = f.dossier(own_server.owner)
    who = agent(own_server, "restart_down_agent")
    embedded.stop(own_server.pgdata)
    try:
        with pytest.raises(DatabaseInterrupted, match="the database connection was lost: nothing was saved, retry"):
            pay(own_server, who, number, 1, "while-down")
    finally:
        embedded.ensure_running(own_server.pgdata)
    assert pay(own_server, who, number, 1, "while-down").startswith("MAN-")
    with own_server.owner.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM app.payments WHERE dossier_number = :n"), {"n": number}
            ).scalar_one()
            == 1
        )


def test_the_payment_form_says_to_retry_and_the_retry_records_one_payment(db: Engine, price_lines_mart: None) -> None:
    """In the app: the connection dies under the payment's INSERT; the form shows the domain error,
    keeps what was typed and its request key, and the second click records exactly one payment."""
    from streamlit.testing.v1 import AppTest

    from backoffice.db.engine import get_engine

    st.cache_data.clear()
    f.user(db, "restart_ui_agent", "agent", f.PASSWORD, locale="en")
    number = f.dossier(db)
    app_engine = get_engine()  # the one the app's readers.engine() caches
    armed = {"insert": True}

    def before_execute(conn: sa.Connection, cursor: Any, statement: str, *args: Any) -> None:
        if armed["insert"] and statement.lstrip().startswith("INSERT INTO app.payments"):
            armed["insert"] = False
            pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
            with db.connect() as killer:
                killer.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})

    at = AppTest.from_file(f.APP_SCRIPT, default_timeout=30).run()
    at.text_input(key="w_login").input("restart_ui_agent")
    at.text_input(key="w_password").input(f.PASSWORD)
    at = at.button[0].click().run()
    at.session_state["open_dossier"] = number
    at.session_state["open_section"] = "payments"
    at = at.switch_page("app_pages/dossier.py").run()
    at.selectbox(key="w_pay_method").set_value("cheque")
    at.text_input(key="w_pay_amount").input("40.00")
    at.text_input(key="w_pay_reference").input("CHQ 42")
    sa.event.listen(app_engine, "before_cursor_execute", before_execute)
    try:
        at.button(key=UI_RECORD).click().run()
    finally:
        sa.event.remove(app_engine, "before_cursor_execute", before_execute)
    assert not at.exception
    assert [e.value for e in at.error] == ["the database connection was lost: nothing was saved, retry"]
    assert at.text_input(key="w_pay_amount").value == "40.00"
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.payments")).scalar_one() == 0

    at.button(key=UI_RECORD).click().run()
    assert not at.exception and not at.error
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT amount, created_by FROM app.payments")).all() == [
            (Decimal("40.00"), "restart_ui_agent")
        ]
        assert (
            conn.execute(
                sa.text("SELECT version FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
            ).scalar_one()
            == 2
        )

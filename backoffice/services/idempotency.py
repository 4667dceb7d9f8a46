"""Idempotency keys: the same key and request returns the first result; another request is refused."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from backoffice.domain.errors import IdempotencyConflict


def request_hash(action: str, arguments: dict[str, Any]) -> str:
    payload = json.dumps({"action": action, "arguments": arguments}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def claim(conn: Connection, key: str, action: str, arguments: dict[str, Any], actor: str) -> Any | None:
    """Claim `key` for this request inside the current transaction.

    Returns None when the key is new (the caller does the work, then calls `store`), or the
    stored result of the identical earlier request. Concurrent claims of one key serialise on
    the primary key: the second waits for the first to commit, then sees its row.
    """
    digest = request_hash(action, arguments)
    inserted = conn.execute(
        sa.text(
            """INSERT INTO app.idempotency_keys (key, action, request_hash, actor)
               VALUES (:key, :action, :hash, :actor) ON CONFLICT (key) DO NOTHING RETURNING key"""
        ),
        {"key": key, "action": action, "hash": digest, "actor": actor},
    ).first()
    if inserted is not None:
        return None
    row = conn.execute(
        sa.text("SELECT action, request_hash, result FROM app.idempotency_keys WHERE key = :key"), {"key": key}
    ).one()
    if row.action != action or row.request_hash != digest:
        raise IdempotencyConflict(key)
    return row.result


def store(conn: Connection, key: str, result: Any) -> None:
    conn.execute(
        sa.text("UPDATE app.idempotency_keys SET result = CAST(:result AS jsonb) WHERE key = :key"),
        {"key": key, "result": json.dumps(result, default=str)},
    )

"""Travel documents of a dossier: upload, replace (a new version, the old ones kept), list, read.

Uploading or replacing a document of a dossier whose travel book is complete and automatic
queues the updated book in the same transaction (backoffice.services.travel_book).

The bytes are written to storage before the row that names them commits. If the transaction
then rolls back (a stale version, a crash, a lost connection), the file stays behind with no
row: harmless, because nothing reads a file no row names, and its random name is never reused.
The other order could commit a row whose file was never written, which would be a lost document.
A sweeper may delete unnamed files older than a day; nothing depends on it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from backoffice.config import get_settings
from backoffice.documents import filetypes
from backoffice.documents.storage import LocalStorage, Storage, new_name
from backoffice.domain.errors import DomainError, InvalidInput, NotFound, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.services import audit, idempotency, travel_book
from backoffice.services.unit_of_work import UnitOfWork

CATEGORIES = ("ticket", "voucher", "insurance", "itinerary", "other")
MAX_TITLE = 120
MAX_FILENAME = 200


class DocumentCorrupted(DomainError):
    """The stored bytes are missing or no longer match the SHA-256 recorded at upload."""


@dataclass(frozen=True)
class DocumentVersion:
    id: int
    document_id: int
    version: int
    original_filename: str
    media_type: str
    size_bytes: int
    sha256: str
    uploaded_at: datetime
    uploaded_by: str


@dataclass(frozen=True)
class Document:
    id: int
    dossier_number: str
    title: str
    category: str
    created_at: datetime
    created_by: str
    # Newest first: the first one is what the dossier currently has.
    versions: tuple[DocumentVersion, ...]

    @property
    def current(self) -> DocumentVersion:
        return self.versions[0]


def default_storage() -> Storage:
    return LocalStorage(get_settings().documents_dir)


def _display_name(filename: str) -> str:
    """The user's file name reduced to its last part: kept for display and download only."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    name = "".join(c for c in name if c.isprintable()).strip()
    if not name:
        raise InvalidInput("file", "has no name")
    return name[-MAX_FILENAME:]


@dataclass(frozen=True)
class _Upload:
    filename: str
    data: bytes
    kind: filetypes.FileType
    sha256: str


def _checked(filename: str, data: bytes) -> _Upload:
    name = _display_name(filename)
    kind = filetypes.check(name, data, max_bytes=get_settings().documents_max_bytes)
    return _Upload(name, data, kind, hashlib.sha256(data).hexdigest())


_VERSION_COLUMNS = """v.id, v.document_id, v.version, v.original_filename, v.media_type, v.size_bytes, v.sha256,
                      v.uploaded_at, v.uploaded_by"""


def _version(conn: Connection, version_id: int) -> DocumentVersion:
    row = (
        conn.execute(
            sa.text(f"SELECT {_VERSION_COLUMNS} FROM app.document_versions v WHERE v.id = :id"), {"id": version_id}
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"document version {version_id} does not exist")
    return DocumentVersion(**row)


def _insert_version(
    uow: UnitOfWork, actor: Actor, document_id: int, version: int, upload: _Upload, storage: Storage
) -> DocumentVersion:
    stored_name = new_name(upload.kind.extension)
    storage.put(stored_name, upload.data)
    version_id = uow.conn.execute(
        sa.text(
            """INSERT INTO app.document_versions (document_id, version, stored_name, original_filename, media_type,
                                                  size_bytes, sha256, uploaded_by)
               VALUES (:doc, :version, :stored, :filename, :media, :size, :sha, :by) RETURNING id"""
        ),
        {
            "doc": document_id,
            "version": version,
            "stored": stored_name,
            "filename": upload.filename,
            "media": upload.kind.media_type,
            "size": len(upload.data),
            "sha": upload.sha256,
            "by": actor.login,
        },
    ).scalar_one()
    return _version(uow.conn, version_id)


def _audited(v: DocumentVersion) -> dict[str, Any]:
    return {
        "document_id": v.document_id,
        "version": v.version,
        "filename": v.original_filename,
        "media_type": v.media_type,
        "size_bytes": v.size_bytes,
        "sha256": v.sha256,
    }


def upload_document(
    uow: UnitOfWork,
    actor: Actor,
    dossier_number: str,
    title: str,
    category: str,
    filename: str,
    data: bytes,
    *,
    idempotency_key: str,
    storage: Storage | None = None,
) -> DocumentVersion:
    """A new document of the dossier, in its version 1."""
    action = "upload_document"
    audit.require(uow.engine, actor, "manage_documents", action, dossier_number)
    title = (title or "").strip()
    try:
        if not title:
            raise InvalidInput("title", "is required")
        if len(title) > MAX_TITLE:
            raise InvalidInput("title", f"is longer than {MAX_TITLE} characters")
        if category not in CATEGORIES:
            raise InvalidInput("category", f"{category!r} is not one of {', '.join(CATEGORIES)}")
        upload = _checked(filename, data)
    except InvalidInput as error:
        audit.refuse(uow, actor, action, dossier_number, error)
    arguments = {
        "dossier": dossier_number,
        "title": title,
        "category": category,
        "filename": upload.filename,
        "sha256": upload.sha256,
    }
    earlier = idempotency.claim(uow.conn, idempotency_key, action, arguments, actor.login)
    if earlier is not None:
        return _version(uow.conn, earlier["version_id"])
    known = uow.conn.execute(
        sa.text("SELECT 1 FROM app.dossiers WHERE dossier_number = :n"), {"n": dossier_number}
    ).first()
    if known is None:
        audit.refuse(uow, actor, action, dossier_number, NotFound(f"dossier {dossier_number} does not exist"))
    document_id = uow.conn.execute(
        sa.text(
            """INSERT INTO app.documents (dossier_number, title, category, created_by)
               VALUES (:n, :title, :category, :by) RETURNING id"""
        ),
        {"n": dossier_number, "title": title, "category": category, "by": actor.login},
    ).scalar_one()
    storage = storage or default_storage()
    created = _insert_version(uow, actor, document_id, 1, upload, storage)
    try:
        travel_book.after_document_change(uow.conn, actor, dossier_number, storage)
    except DomainError as error:
        audit.refuse(uow, actor, action, dossier_number, error)
    audit.record(
        uow.conn,
        actor.login,
        action,
        dossier_number=dossier_number,
        after={"title": title, "category": category, **_audited(created)},
    )
    idempotency.store(uow.conn, idempotency_key, {"version_id": created.id})
    uow.commit()
    return created


def replace_document(
    uow: UnitOfWork,
    actor: Actor,
    document_id: int,
    filename: str,
    data: bytes,
    *,
    expected_version: int,
    idempotency_key: str,
    storage: Storage | None = None,
) -> DocumentVersion:
    """A new version of the document; refused if someone added one since `expected_version`."""
    action = "replace_document"
    audit.require(uow.engine, actor, "manage_documents", action)
    try:
        upload = _checked(filename, data)
    except InvalidInput as error:
        audit.refuse(uow, actor, action, None, error)
    arguments = {
        "document_id": document_id,
        "filename": upload.filename,
        "sha256": upload.sha256,
        "expected_version": expected_version,
    }
    earlier = idempotency.claim(uow.conn, idempotency_key, action, arguments, actor.login)
    if earlier is not None:
        return _version(uow.conn, earlier["version_id"])
    # Locking the document serialises two replacements: the second sees the first's version.
    document = uow.conn.execute(
        sa.text("SELECT dossier_number FROM app.documents WHERE id = :id FOR UPDATE"), {"id": document_id}
    ).first()
    if document is None:
        audit.refuse(uow, actor, action, None, NotFound(f"document {document_id} does not exist"))
    current = _version(
        uow.conn,
        uow.conn.execute(
            sa.text("SELECT id FROM app.document_versions WHERE document_id = :id ORDER BY version DESC LIMIT 1"),
            {"id": document_id},
        ).scalar_one(),
    )
    if current.version != expected_version:
        stale = StaleVersion(f"document {document_id}", expected_version, current.version)
        audit.refuse(uow, actor, action, document.dossier_number, stale)
    storage = storage or default_storage()
    created = _insert_version(uow, actor, document_id, current.version + 1, upload, storage)
    try:
        travel_book.after_document_change(uow.conn, actor, document.dossier_number, storage)
    except DomainError as error:
        audit.refuse(uow, actor, action, document.dossier_number, error)
    audit.record(
        uow.conn,
        actor.login,
        action,
        dossier_number=document.dossier_number,
        before=_audited(current),
        after=_audited(created),
    )
    idempotency.store(uow.conn, idempotency_key, {"version_id": created.id})
    uow.commit()
    return created


def list_documents(conn: Connection, dossier_number: str) -> list[Document]:
    """The dossier's documents, oldest first, each with all its versions, newest first."""
    rows = conn.execute(
        sa.text(
            f"""SELECT d.dossier_number, d.title, d.category, d.created_at, d.created_by, {_VERSION_COLUMNS}
                FROM app.documents d JOIN app.document_versions v ON v.document_id = d.id
                WHERE d.dossier_number = :n ORDER BY d.id, v.version DESC"""
        ),
        {"n": dossier_number},
    ).mappings()
    heads: dict[int, dict[str, Any]] = {}
    versions: dict[int, list[DocumentVersion]] = {}
    for row in rows:
        heads.setdefault(
            row["document_id"], {k: row[k] for k in ("dossier_number", "title", "category", "created_at", "created_by")}
        )
        versions.setdefault(row["document_id"], []).append(
            DocumentVersion(**{k: row[k] for k in DocumentVersion.__dataclass_fields__})
        )
    return [Document(id=i, versions=tuple(versions[i]), **head) for i, head in heads.items()]


def read_version(conn: Connection, storage: Storage, version_id: int) -> tuple[str, str, bytes]:
    """(file name, media type, bytes) of one version, refused if the stored bytes were altered."""
    row = conn.execute(
        sa.text("SELECT stored_name, original_filename, media_type, sha256 FROM app.document_versions WHERE id = :id"),
        {"id": version_id},
    ).first()
    if row is None:
        raise NotFound(f"document version {version_id} does not exist")
    try:
        data = storage.get(row.stored_name)
    except FileNotFoundError:
        raise DocumentCorrupted(f"the file of {row.original_filename!r} is missing from the storage") from None
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise DocumentCorrupted(f"the file of {row.original_filename!r} was altered since it was uploaded")
    return row.original_filename, row.media_type, data

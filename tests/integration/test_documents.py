"""Travel documents: versions kept with who/when/SHA-256, content-checked types, rights, audit, integrity."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa

from backoffice.config import get_settings
from backoffice.documents import filetypes
from backoffice.documents.storage import LocalStorage
from backoffice.domain.errors import IdempotencyConflict, InvalidInput, NotFound, PermissionDenied, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.services.documents import (
    DocumentCorrupted,
    list_documents,
    read_version,
    replace_document,
    upload_document,
)
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor

PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
PDF_2 = b"%PDF-1.7\n% the corrected ticket\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
HTML = b"<!doctype html><script>alert(1)</script>"


def actor(engine: sa.Engine, login: str, role: str) -> Actor:
    f.user(engine, login, role)
    with UnitOfWork(engine) as uow:
        return load_actor(uow, login)


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "documents")


def upload(
    db: sa.Engine,
    who: Actor,
    number: str,
    storage: LocalStorage,
    filename: str = "ticket.pdf",
    data: bytes = PDF,
    **options: str,
):
    with UnitOfWork(db) as uow:
        return upload_document(
            uow,
            who,
            number,
            options.get("title", "Billet aller"),
            options.get("category", "ticket"),
            filename,
            data,
            idempotency_key=options.get("key") or key(),
            storage=storage,
        )


def events(db: sa.Engine, action: str) -> list[sa.Row]:
    with db.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT actor, outcome, dossier_number, before, after, detail FROM audit.events "
                    "WHERE action = :a ORDER BY id"
                ),
                {"a": action},
            )
        )


def test_upload_then_replace_keeps_every_version_with_who_when_and_sha256(db: sa.Engine, storage: LocalStorage) -> None:
    alice, sam = actor(db, "alice", "agent"), actor(db, "sam", "senior_agent")
    number = f.dossier(db)
    first = upload(db, alice, number, storage)
    with UnitOfWork(db) as uow:
        second = replace_document(
            uow,
            sam,
            first.document_id,
            "ticket-v2.pdf",
            PDF_2,
            expected_version=1,
            idempotency_key=key(),
            storage=storage,
        )
    with db.connect() as conn:
        [document] = list_documents(conn, number)
        old = read_version(conn, storage, first.id)
        new = read_version(conn, storage, second.id)
    assert (document.title, document.category, document.created_by) == ("Billet aller", "ticket", "alice")
    assert [(v.version, v.uploaded_by, v.sha256) for v in document.versions] == [
        (2, "sam", hashlib.sha256(PDF_2).hexdigest()),
        (1, "alice", hashlib.sha256(PDF).hexdigest()),
    ]
    assert document.current == second and second.uploaded_at >= first.uploaded_at
    assert old == ("ticket.pdf", "application/pdf", PDF) and new == ("ticket-v2.pdf", "application/pdf", PDF_2)
    [uploaded], [replaced] = events(db, "upload_document"), events(db, "replace_document")
    assert (uploaded.actor, uploaded.outcome, uploaded.dossier_number) == ("alice", "done", number)
    assert uploaded.after["sha256"] == first.sha256 and uploaded.before is None
    assert (replaced.before["version"], replaced.after["version"], replaced.dossier_number) == (1, 2, number)


def test_stale_version_is_refused_with_a_clear_message_and_audited(db: sa.Engine, storage: LocalStorage) -> None:
    alice, sam = actor(db, "alice", "agent"), actor(db, "sam", "senior_agent")
    first = upload(db, alice, f.dossier(db), storage)
    with UnitOfWork(db) as uow:
        replace_document(
            uow, sam, first.document_id, "v2.pdf", PDF_2, expected_version=1, idempotency_key=key(), storage=storage
        )
    with UnitOfWork(db) as uow, pytest.raises(StaleVersion, match=r"your version 1, now 2"):
        replace_document(
            uow, alice, first.document_id, "mine.pdf", PDF, expected_version=1, idempotency_key=key(), storage=storage
        )
    assert [e.outcome for e in events(db, "replace_document")] == ["done", "refused"]
    with db.connect() as conn:
        assert [v.version for v in list_documents(conn, first_number(db))[0].versions] == [2, 1]


def first_number(db: sa.Engine) -> str:
    with db.connect() as conn:
        return conn.execute(sa.text("SELECT dossier_number FROM app.documents")).scalar_one()


def test_same_key_same_request_returns_the_first_result_other_request_refused(
    db: sa.Engine, storage: LocalStorage
) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db)
    same = key()
    first = upload(db, alice, number, storage, key=same)
    again = upload(db, alice, number, storage, key=same)
    assert again == first
    with pytest.raises(IdempotencyConflict):
        upload(db, alice, number, storage, data=PDF_2, key=same)
    with db.connect() as conn:
        assert len(list_documents(conn, number)) == 1
    assert len(list(storage.root.iterdir())) == 1  # the replay wrote no second file


def test_agent_without_manage_documents_is_refused_and_the_refusal_audited(
    db: sa.Engine, storage: LocalStorage
) -> None:
    accountant = actor(db, "carla", "accountant")
    number = f.dossier(db)
    with pytest.raises(PermissionDenied, match="manage_documents"):
        upload(db, accountant, number, storage)
    [refusal] = events(db, "upload_document")
    assert (refusal.actor, refusal.outcome, refusal.dossier_number) == ("carla", "refused", number)
    with db.connect() as conn:
        assert list_documents(conn, number) == []


def test_unknown_dossier_and_document_are_not_found(db: sa.Engine, storage: LocalStorage) -> None:
    alice = actor(db, "alice", "agent")
    with pytest.raises(NotFound, match="BK-0000-000000"):
        upload(db, alice, "BK-0000-000000", storage)
    with UnitOfWork(db) as uow, pytest.raises(NotFound):
        replace_document(uow, alice, 999, "x.pdf", PDF, expected_version=1, idempotency_key=key(), storage=storage)


@pytest.mark.parametrize(
    ("filename", "data", "problem"),
    [
        ("empty.pdf", b"", "is empty"),
        ("big.pdf", b"%PDF-" + b"0" * get_settings().documents_max_bytes, "larger than 20 MB"),
        ("page.pdf", HTML, "is not a PDF or an image"),
        ("setup.pdf", b"MZ\x90\x00\x03" + b"\x00" * 64, "is not a PDF or an image"),
        ("photo.png", PDF, "named .png but its content is PDF"),
        ("ticket", PDF, "named .(none) but its content is PDF"),
    ],
)
def test_bad_files_are_refused_naming_the_field(
    db: sa.Engine, storage: LocalStorage, filename: str, data: bytes, problem: str
) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db)
    with pytest.raises(InvalidInput) as refused:
        upload(db, alice, number, storage, filename=filename, data=data)
    assert refused.value.field == "file" and problem in refused.value.problem
    assert [e.outcome for e in events(db, "upload_document")] == ["refused"]
    assert not storage.root.exists() or not any(storage.root.iterdir())


def test_images_are_accepted_by_content() -> None:
    assert filetypes.check("a.JPEG", b"\xff\xd8\xff\xe0rest", max_bytes=1000).media_type == "image/jpeg"
    assert filetypes.check("a.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 ", max_bytes=1000).media_type == "image/webp"
    assert filetypes.check("a.heic", b"\x00\x00\x00\x18ftypheic", max_bytes=1000).media_type == "image/heic"
    assert filetypes.check("a.png", PNG, max_bytes=1000).media_type == "image/png"


def test_path_traversal_filename_is_stored_under_a_generated_name(db: sa.Engine, storage: LocalStorage) -> None:
    alice = actor(db, "alice", "agent")
    created = upload(db, alice, f.dossier(db), storage, filename="../../etc/passwd.pdf")
    assert created.original_filename == "passwd.pdf"
    [stored] = list(storage.root.iterdir())
    assert stored.parent == storage.root and stored.name.endswith(".pdf") and stored.name != "passwd.pdf"
    assert stored.read_bytes() == PDF
    for name in ("../x.pdf", "/etc/passwd", "passwd.pdf", ""):
        with pytest.raises(ValueError):
            storage.put(name, PDF)


def test_database_refuses_update_and_delete_of_a_version(db: sa.Engine, storage: LocalStorage) -> None:
    created = upload(db, actor(db, "alice", "agent"), f.dossier(db), storage)
    for statement in (
        "UPDATE app.document_versions SET sha256 = repeat('0', 64) WHERE id = :id",
        "DELETE FROM app.document_versions WHERE id = :id",
    ):
        with db.begin() as conn, pytest.raises(sa.exc.IntegrityError, match="immutable"):
            conn.execute(sa.text(statement), {"id": created.id})


def test_tampered_or_missing_file_is_refused_on_read(db: sa.Engine, storage: LocalStorage) -> None:
    created = upload(db, actor(db, "alice", "agent"), f.dossier(db), storage)
    [stored] = list(storage.root.iterdir())
    stored.write_bytes(PDF.replace(b"1.7", b"1.4"))
    with db.connect() as conn, pytest.raises(DocumentCorrupted, match="altered"):
        read_version(conn, storage, created.id)
    stored.unlink()
    with db.connect() as conn, pytest.raises(DocumentCorrupted, match="missing"):
        read_version(conn, storage, created.id)


class CrashAfterWrite(LocalStorage):
    """Writes the file, then fails as a lost connection would before the row commits."""

    def put(self, name: str, data: bytes) -> None:
        super().put(name, data)
        raise ConnectionError("lost the database half-way")


def test_file_orphaned_by_a_rollback_is_harmless_and_the_retry_succeeds(db: sa.Engine, tmp_path: Path) -> None:
    alice = actor(db, "alice", "agent")
    number, same = f.dossier(db), key()
    crashing = CrashAfterWrite(tmp_path / "documents")
    with pytest.raises(ConnectionError):
        upload(db, alice, number, crashing, key=same)
    [orphan] = list(crashing.root.iterdir())
    with db.connect() as conn:
        assert list_documents(conn, number) == []
    retried = upload(db, alice, number, LocalStorage(crashing.root), key=same)
    with db.connect() as conn:
        assert [d.current for d in list_documents(conn, number)] == [retried]
        assert read_version(conn, LocalStorage(crashing.root), retried.id)[2] == PDF
    assert orphan.exists() and len(list(crashing.root.iterdir())) == 2

"""Uploads at the service boundary: size, type by content, generated names, traversal and disguises.

Every refused file is refused with a message on the `file` field, audited, and leaves nothing behind:
no row in app.documents or app.document_versions, no file in the storage. Accepted files, whatever
their name, are stored under a generated name directly under the storage root.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backoffice.config import get_settings
from backoffice.documents.storage import LocalStorage
from backoffice.domain.errors import InvalidInput
from backoffice.domain.permissions import Actor
from backoffice.services.documents import upload_document
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor

PDF = b"%PDF-1.7\n1 0 obj << /Title (Billet) >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 64 + b"This program cannot be run in DOS mode."
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 32
ZIP = b"PK\x03\x04\x14\x00" + b"\x00" * 32
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
HTML = b"<!doctype html><html><script>alert(document.cookie)</script></html>"
MAGIC = [PDF, PNG, JPEG, b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"\x00\x00\x00\x18ftypheic", EXE, ELF, ZIP, SVG, HTML, b""]


@pytest.fixture
def world(db: sa.Engine, tmp_path: Path) -> tuple[sa.Engine, Actor, str, LocalStorage]:
    f.user(db, "alice", "agent")
    with UnitOfWork(db) as uow:
        alice = load_actor(uow, "alice")
    return db, alice, f.dossier(db), LocalStorage(tmp_path / "documents")


def upload(world: tuple[sa.Engine, Actor, str, LocalStorage], filename: str, data: bytes, title: str = "Billet"):
    db, alice, number, storage = world
    with UnitOfWork(db) as uow:
        return upload_document(
            uow, alice, number, title, "ticket", filename, data, idempotency_key=uuid.uuid4().hex, storage=storage
        )


def counts(world: tuple[sa.Engine, Actor, str, LocalStorage]) -> tuple[int, int, int]:
    db, _, _, storage = world
    with db.connect() as conn:
        documents = conn.execute(sa.text("SELECT count(*) FROM app.documents")).scalar_one()
        versions = conn.execute(sa.text("SELECT count(*) FROM app.document_versions")).scalar_one()
    files = len(list(storage.root.iterdir())) if storage.root.exists() else 0
    return documents, versions, files


def refusals(db: sa.Engine) -> list[str]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT detail FROM audit.events WHERE action = 'upload_document' AND outcome = 'refused'")
        )
        return list(rows.scalars())


@pytest.mark.parametrize(
    ("filename", "data", "problem"),
    [
        ("setup.pdf", EXE, "is not a PDF or an image"),
        ("setup.exe", EXE, "is not a PDF or an image"),
        ("run.pdf", ELF, "is not a PDF or an image"),
        ("archive.pdf", ZIP, "is not a PDF or an image"),
        ("page.pdf", HTML, "is not a PDF or an image"),
        ("logo.png", SVG, "is not a PDF or an image"),
        # A PDF/HTML polyglot: a PDF to our check, a page to a browser that sniffs it.
        ("billet.pdf", b"%PDF-1.7\n<html><body><script>alert(1)</script>", "holds HTML markup"),
        ("billet.pdf", b"%PDF-1.4\n%\xe2\xe3\n<  SCRIPT src=//evil.example/x.js>", "holds HTML markup"),
        ("photo.jpg", JPEG + b"<iframe src=//evil.example>", "holds HTML markup"),
        ("billet.html", PDF, "is named .html but its content is PDF"),
        ("billet.pdf.exe", PDF, "is named .exe but its content is PDF"),
        ("billet", PDF, "is named .(none) but its content is PDF"),
        ("photo.pdf", PNG, "is named .pdf but its content is PNG"),
        # Right-to-left override: shown as "billetexe.pdf", really "billet\u202efdp.exe".
        ("billet\u202efdp.exe", PDF, "is named .exe but its content is PDF"),
        ("vide.pdf", b"", "is empty"),
        ("../../", PDF, "'..' is named .(none)"),
        ("dir/\u202e\x00", PDF, "has no name"),
    ],
)
def test_disguised_and_bad_files_are_refused_and_leave_nothing(world, filename: str, data: bytes, problem: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        upload(world, filename, data)
    assert refused.value.field == "file" and problem in refused.value.problem
    assert counts(world) == (0, 0, 0)
    assert refusals(world[0]) == [str(refused.value)]


def test_a_file_over_the_size_limit_is_refused(world, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKOFFICE_DOCUMENTS_MAX_BYTES", str(2 * 1024 * 1024))
    get_settings.cache_clear()
    try:
        with pytest.raises(InvalidInput, match="larger than 2 MB"):
            upload(world, "gros.pdf", PDF + b"0" * (2 * 1024 * 1024))
        assert counts(world) == (0, 0, 0)
        upload(world, "juste.pdf", PDF + b"0" * (2 * 1024 * 1024 - len(PDF)))
        assert counts(world) == (1, 1, 1)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_the_server_refuses_larger_uploads_than_the_service() -> None:
    config = (Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml").read_text()
    assert "enableXsrfProtection = true" in config
    limit_mb = int(next(line for line in config.splitlines() if line.startswith("maxUploadSize")).split("=")[1])
    assert limit_mb * 1024 * 1024 == get_settings().documents_max_bytes


@pytest.mark.parametrize(
    ("filename", "shown"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("..\\..\\Windows\\System32\\billet.pdf", "billet.pdf"),
        ("C:\\Users\\agent\\Desktop\\billet.pdf", "billet.pdf"),
        ("/var/lib/backoffice/billet.pdf", "billet.pdf"),
        ("billet\x00.pdf", "billet.pdf"),
        ("%2e%2e%2fbillet.pdf", "%2e%2e%2fbillet.pdf"),
        ("\u00e9t\u00e9 2026.pdf", "\u00e9t\u00e9 2026.pdf"),
    ],
)
def test_any_name_is_only_shown_the_file_is_stored_under_a_generated_one(world, filename: str, shown: str) -> None:
    created = upload(world, filename, PDF)
    assert created.original_filename == shown
    storage = world[3]
    (stored,) = list(storage.root.iterdir())
    assert stored.parent == storage.root and len(stored.stem) == 32 and stored.suffix == ".pdf"
    assert stored.read_bytes() == PDF


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    filename=st.one_of(
        st.text(max_size=40),
        st.builds(
            lambda prefix, stem, ext: f"{prefix}{stem}.{ext}",
            st.sampled_from(["", "../", "..\\", "/", "C:\\", "./.", "~/"]),
            st.text(max_size=12),
            st.sampled_from(["pdf", "PDF", "png", "jpg", "jpeg", "webp", "heic", "exe", "html", "svg", "", "pdf "]),
        ),
    ),
    head=st.sampled_from(MAGIC),
    tail=st.binary(max_size=300),
    title=st.one_of(st.just("Billet"), st.text(max_size=130)),
)
def test_fuzzed_uploads_are_stored_safely_or_refused_on_a_named_field(
    world, filename: str, head: bytes, tail: bytes, title: str
) -> None:
    before = counts(world)
    try:
        created = upload(world, filename, head + tail, title)
    except InvalidInput as refused:
        assert refused.field in ("file", "title"), refused
        assert counts(world) == before, "a refused upload writes nothing"
        return
    documents, versions, files = counts(world)
    assert (documents, versions, files) == (before[0] + 1, before[1] + 1, before[2] + 1)
    assert created.media_type in ("application/pdf", "image/png", "image/jpeg", "image/webp", "image/heic")
    assert "/" not in created.original_filename and "\\" not in created.original_filename
    assert all(p.parent == world[3].root and len(p.stem) == 32 for p in world[3].root.iterdir())

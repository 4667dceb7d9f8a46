"""The Documents tab: upload several files, see the versions, replace one; read-only without the right."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest
from test_app import log_in

from backoffice.config import get_settings
from backoffice.services.documents import upload_document
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor

PDF = b"%PDF-1.7\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.fixture
def documents_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("BACKOFFICE_DOCUMENTS_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def open_documents(login: str, number: str) -> AppTest:
    at = log_in(login)
    at.session_state["open_dossier"] = number
    at.session_state["open_section"] = "documents"
    return at.switch_page("app_pages/dossier.py").run()


def test_upload_several_files_then_replace_one(
    seeded: dict[str, str], price_lines_mart: None, documents_dir: Path
) -> None:
    at = open_documents("alice", seeded["dupont"])
    at.file_uploader(key="w_documents_files").set_value(
        [("billet.pdf", PDF, "application/pdf"), ("voucher.png", PNG, "image/png")]
    )
    at.button(key="FormSubmitter:upload_documents-Déposer").click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["2 document(s) ajouté(s)."]
    assert len(list(documents_dir.iterdir())) == 2
    assert [b.label for b in at.download_button] == ["Télécharger la version 1"] * 2

    first = next(u for u in at.file_uploader if u.key.startswith("w_replace_"))
    document_id = first.key.removeprefix("w_replace_")
    first.set_value(("billet-v2.pdf", PDF + b"%v2\n", "application/pdf"))
    at.button(key=f"FormSubmitter:replace_document_{document_id}-Remplacer").click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["Nouvelle version enregistrée."]
    history = at.tabs[6].dataframe[0].value
    assert list(history["Version"]) == [2, 1] and list(history["Fichier"]) == ["billet-v2.pdf", "billet.pdf"]


def test_disguised_file_is_refused_naming_the_field(
    seeded: dict[str, str], price_lines_mart: None, documents_dir: Path
) -> None:
    at = open_documents("alice", seeded["dupont"])
    at.file_uploader(key="w_documents_files").set_value(("page.pdf", b"<html></html>", "application/pdf"))
    at.button(key="FormSubmitter:upload_documents-Déposer").click().run()
    assert [e.value for e in at.error] == [
        "page.pdf: Fichier: 'page.pdf' is not a PDF or an image (accepted: heic, heif, jpeg, jpg, pdf, png, webp)"
    ]
    assert not any(documents_dir.iterdir())


def test_without_manage_documents_the_list_is_read_only(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None, documents_dir: Path
) -> None:
    f.user(db, "carla", "accountant")
    with UnitOfWork(db) as uow:
        alice = load_actor(uow, "alice")
        upload_document(uow, alice, seeded["dupont"], "Billet", "ticket", "billet.pdf", PDF, idempotency_key="k1")
    at = open_documents("carla", seeded["dupont"])
    assert not at.exception
    assert [b.label for b in at.download_button] == ["Télécharger la version 1"]
    assert not at.file_uploader

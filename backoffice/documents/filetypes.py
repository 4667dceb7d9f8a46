"""What a file really is, decided by its first bytes, not by its name.

Only the kinds travel documents come in are accepted (PDF and photos). A file whose content
is not one of them, or whose name claims another kind than its content (an HTML page or a
program renamed `.pdf`), is refused: the name is what a client's computer will trust when it
opens the download. A file of an accepted kind that carries HTML markup in its first kilobyte (a
PDF/HTML polyglot) is refused too: a browser that sniffs content could run it as a page.
Downloads are always served with the detected type, never with what the uploader's browser claimed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

from backoffice.domain.errors import InvalidInput


@dataclass(frozen=True)
class FileType:
    media_type: str
    extension: str
    # Every extension a file of this type may carry in its name.
    extensions: frozenset[str]


PDF = FileType("application/pdf", "pdf", frozenset({"pdf"}))
PNG = FileType("image/png", "png", frozenset({"png"}))
JPEG = FileType("image/jpeg", "jpg", frozenset({"jpg", "jpeg"}))
WEBP = FileType("image/webp", "webp", frozenset({"webp"}))
HEIC = FileType("image/heic", "heic", frozenset({"heic", "heif"}))
ACCEPTED = (PDF, PNG, JPEG, WEBP, HEIC)
ACCEPTED_EXTENSIONS = sorted(e for t in ACCEPTED for e in t.extensions)
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"}
# How far browsers look for markup when they sniff a download's type (the WHATWG rules read 1445
# bytes; older browsers fewer): the tags that make a page of it, with optional spaces after `<`.
SNIFF_BYTES = 1445
_MARKUP = re.compile(
    rb"<\s*(!doctype\s+html|html|head|body|script|iframe|object|embed|svg|meta|title|style|frameset)[\s>/]",
    re.IGNORECASE,
)


def detect(data: bytes) -> FileType | None:
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data[4:8] == b"ftyp" and data[8:12] in _HEIC_BRANDS:
        return HEIC
    return None


def check(filename: str, data: bytes, *, max_bytes: int) -> FileType:
    """The type of `data`, or InvalidInput on field `file` saying what is wrong."""
    if not data:
        raise InvalidInput("file", f"{filename!r} is empty")
    if len(data) > max_bytes:
        raise InvalidInput("file", f"{filename!r} is larger than {max_bytes // (1024 * 1024)} MB")
    found = detect(data)
    if found is None:
        raise InvalidInput(
            "file", f"{filename!r} is not a PDF or an image (accepted: {', '.join(ACCEPTED_EXTENSIONS)})"
        )
    if _MARKUP.search(data[:SNIFF_BYTES]):
        raise InvalidInput("file", f"{filename!r} looks like a {found.extension.upper()} but holds HTML markup")
    extension = PurePath(filename).suffix.lower().lstrip(".")
    if extension not in found.extensions:
        raise InvalidInput(
            "file", f"{filename!r} is named .{extension or '(none)'} but its content is {found.extension.upper()}"
        )
    return found

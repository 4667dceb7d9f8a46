"""Reading landing files: bytes, checksum, and text when the file is text at all."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class LandingFile:
    path: Path
    name: str  # relative to the landing root: what rejections and raw.landing_files record
    sha256: str
    size: int
    text: str | None  # None when unreadable
    unreadable: str | None  # why the whole file is refused
    # Kept only for formats parsed from bytes (XML, PDF), so what is parsed is what was hashed.
    data: bytes | None = field(default=None, repr=False, compare=False)

    def lines(self) -> list[tuple[int, str]]:
        """(1-based line number, line) for every non-blank line; CRLF tolerated."""
        assert self.text is not None
        return [
            (number, line.rstrip("\r")) for number, line in enumerate(self.text.split("\n"), start=1) if line.strip()
        ]


def read_landing_file(path: Path, root: Path, keep_bytes: bool = False) -> LandingFile:
    return landing_file(path, root, path.read_bytes(), keep_bytes)


def landing_file(path: Path, root: Path, data: bytes, keep_bytes: bool = False) -> LandingFile:
    name = path.relative_to(root).as_posix()
    sha = hashlib.sha256(data).hexdigest()
    text, reason = _decode(data)
    return LandingFile(
        path=path,
        name=name,
        sha256=sha,
        size=len(data),
        text=text,
        unreadable=reason,
        data=data if keep_bytes else None,
    )


def _decode(data: bytes) -> tuple[str | None, str | None]:
    nul = data.find(b"\x00")
    if nul >= 0:
        return None, f"binary file (NUL byte at offset {nul}): expected UTF-8 text"
    try:
        text = data.removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, (
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} cannot be decoded; "
            "re-export the file as UTF-8"
        )
    return text, None

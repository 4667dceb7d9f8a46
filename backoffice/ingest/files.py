"""Reading landing files: bytes, checksum, and text when the file is text at all.

Small files (CSV, XML, PDF) are read whole. Booking files can be gigabytes for one day, so they
are scanned (`scan_landing_file`: checksum and readability in fixed-size reads, nothing kept) and
then read line by line (`numbered_lines`): memory does not grow with the file.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BOM = b"\xef\xbb\xbf"
SCAN_CHUNK = 1 << 20


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


def scan_landing_file(path: Path, root: Path) -> LandingFile:
    """`read_landing_file` without keeping the file: the same checksum and the same verdict
    (binary, or not UTF-8 with the offset of the first bad byte) from 1 MiB reads; `text` is None."""
    sha = hashlib.sha256()
    nul: int | None = None
    bad: tuple[int, int] | None = None  # (offset after any BOM, byte value) of the first undecodable byte
    offset = skip = 0  # bytes read so far; length of the BOM
    pending = b""  # the end of the previous read when it stops inside a UTF-8 sequence
    with path.open("rb") as f:
        while chunk := f.read(SCAN_CHUNK):
            sha.update(chunk)
            if nul is None and (found := chunk.find(b"\x00")) >= 0:
                nul = offset + found
            if bad is None:
                buf, start = (pending + chunk if pending else chunk), offset - len(pending)
                if start == 0 and buf.startswith(BOM):
                    buf, start, skip = buf[len(BOM) :], len(BOM), len(BOM)
                try:
                    pending = buf[codecs.utf_8_decode(buf, "strict", False)[1] :]
                except UnicodeDecodeError as exc:
                    bad = (start + exc.start - skip, buf[exc.start])
            offset += len(chunk)
    if bad is None and pending:  # the file ends inside a character
        bad = (offset - len(pending) - skip, pending[0])
    reason = None
    if nul is not None:
        reason = f"binary file (NUL byte at offset {nul}): expected UTF-8 text"
    elif bad is not None:
        reason = (
            f"not UTF-8 text: byte 0x{bad[1]:02x} at offset {bad[0]} cannot be decoded; re-export the file as UTF-8"
        )
    name = path.relative_to(root).as_posix()
    return LandingFile(path=path, name=name, sha256=sha.hexdigest(), size=offset, text=None, unreadable=reason)


def numbered_lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(1-based line number, line, whether the file ends on it without a newline) for every
    non-blank line of a file `scan_landing_file` found readable; CRLF tolerated."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1:
                raw = raw.removeprefix(BOM)
            unterminated = not raw.endswith(b"\n")
            line = raw.decode("utf-8").removesuffix("\n").rstrip("\r")
            if line.strip():
                yield number, line, unterminated


def _decode(data: bytes) -> tuple[str | None, str | None]:
    nul = data.find(b"\x00")
    if nul >= 0:
        return None, f"binary file (NUL byte at offset {nul}): expected UTF-8 text"
    body = data.removeprefix(BOM)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, (
            f"not UTF-8 text: byte 0x{body[exc.start]:02x} at offset {exc.start} cannot be decoded; "
            "re-export the file as UTF-8"
        )
    return text, None

"""Files of the landing zone: day folders, CSV with a fixed dialect, byte-stable output."""

from __future__ import annotations

import csv
import io
from pathlib import Path


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def csv_line(fields: list[str]) -> str:
    """One CSV record, quoted like csv.writer's minimal quoting; pending rows wait as one string each."""
    out = []
    for f in fields:
        if '"' in f or "," in f or "\n" in f or "\r" in f:
            f = '"' + f.replace('"', '""') + '"'
        out.append(f)
    return ",".join(out) + "\n"


class Landing:
    """Writes under the landing root and counts the files it wrote."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = 0

    def path(self, source: str, day_iso: str, name: str) -> Path:
        folder = self.root / source / day_iso
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def write_text(self, path: Path, text: str) -> None:
        path.write_text(text, encoding="utf-8", newline="")
        self.files += 1

    def write_bytes(self, path: Path, data: bytes) -> None:
        path.write_bytes(data)
        self.files += 1

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


class CsvStream:
    """A CSV file written row by row for the whole run (the ground-truth files)."""

    def __init__(self, path: Path, header: list[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(header)

    def rows(self, rows: list[list[str]]) -> None:
        self._writer.writerows(rows)

    def close(self) -> None:
        self._file.close()

"""Where a finished export goes: one protocol, a local folder built in.

A delivery receives a folder name (the export's day) and the finished, validated files; it must
make them appear whole or not at all. An SFTP server or an object store plugs in as another class
with the same `deliver` method (see docs/export.md); nothing else in the export changes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol


class Delivery(Protocol):
    def deliver(self, folder: str, files: Mapping[str, Path]) -> str:
        """Put each file (name -> local path) under `folder`; return where they went, for people."""
        ...


class LocalDirectory:
    """Files under `<root>/<folder>/`, each written to a temporary name then renamed: a reader
    never sees half a file, and a re-run replaces the previous copy atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def deliver(self, folder: str, files: Mapping[str, Path]) -> str:
        target = self.root / folder
        target.mkdir(parents=True, exist_ok=True)
        for name, source in files.items():
            partial = target / f".{name}.partial"
            shutil.copyfile(source, partial)
            os.replace(partial, target / name)
        return str(target)

"""Where a finished export goes: one protocol, a local folder built in, the others chosen by settings.

A delivery receives a folder name (the export's day) and the finished, validated files; it must
make them appear whole or not at all. `BACKOFFICE_EXPORT_DELIVERY` picks the destination
(`directory`, `sftp`, `s3`: see `configured`); a CSV layout for a given accounting tool
(`BACKOFFICE_EXPORT_CSV_LAYOUT`) wraps whichever it is. A destination that cannot take the files
raises DeliveryFailed, which fails the export's run: nothing is recorded as exported.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from backoffice.domain.errors import DomainError

if TYPE_CHECKING:
    from backoffice.config import Settings

MANIFEST = "manifest.json"


class Delivery(Protocol):
    def deliver(self, folder: str, files: Mapping[str, Path]) -> str:
        """Put each file (name -> local path) under `folder`; return where they went, for people."""
        ...


class DeliveryFailed(DomainError):
    """The destination did not take the files; the export's run fails and records nothing."""

    def __init__(self, where: str, reason: object) -> None:
        self.where = where
        super().__init__(f"delivery to {where} failed: {reason}")


def manifest_last(files: Mapping[str, Path]) -> list[tuple[str, Path]]:
    """The files in delivery order: the manifest after every data file, so a reader that waits for
    the manifest finds a whole set."""
    return sorted(files.items(), key=lambda item: item[0] == MANIFEST)


class LocalDirectory:
    """Files under `<root>/<folder>/`, each written to a temporary name then renamed: a reader
    never sees half a file, and a re-run replaces the previous copy atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def deliver(self, folder: str, files: Mapping[str, Path]) -> str:
        target = self.root / folder
        try:
            target.mkdir(parents=True, exist_ok=True)
            for name, source in manifest_last(files):
                partial = target / f".{name}.partial"
                shutil.copyfile(source, partial)
                os.replace(partial, target / name)
        except OSError as error:
            raise DeliveryFailed(str(target), error) from error
        return str(target)


def configured(settings: Settings) -> Delivery:
    """The destination the settings name, wrapped in the CSV layout when one is configured."""
    kind = settings.export_delivery
    delivery: Delivery
    if kind == "sftp":
        from backoffice.export.sftp import SftpDelivery

        delivery = SftpDelivery.from_settings(settings)
    elif kind == "s3":
        from backoffice.export.s3 import S3Delivery

        delivery = S3Delivery.from_settings(settings)
    else:
        delivery = LocalDirectory(settings.export_dir)
    if settings.export_csv_layout is not None:
        from backoffice.export.csv_layout import MappedCsv, load_layout

        delivery = MappedCsv(delivery, load_layout(settings.export_csv_layout))
    return delivery

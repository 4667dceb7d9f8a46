"""Delivery to an SFTP server (asyncssh): each day's files under `<remote dir>/<YYYY-MM-DD>/`.

Each file is uploaded to a hidden temporary name (`.name.partial`) and renamed into place, so a
reader on the server never sees half a file, and the manifest goes last, so a reader that waits
for it finds the whole set. A re-run overwrites the day's files with identical bytes. The server's
host key is always checked (known_hosts file); a server that is down, refuses the login or cannot
store a file raises DeliveryFailed.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncssh

from backoffice.domain.errors import InvalidInput
from backoffice.export.delivery import DeliveryFailed, manifest_last

if TYPE_CHECKING:
    from backoffice.config import Settings

CONNECT_TIMEOUT_S = 30


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run to completion from synchronous code, even when this thread already has an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@dataclass(frozen=True)
class SftpDelivery:
    host: str
    user: str
    remote_dir: str = "."
    port: int = 22
    password: str | None = None
    key_file: Path | None = None
    known_hosts: Path | None = None  # None: ~/.ssh/known_hosts

    @classmethod
    def from_settings(cls, settings: Settings) -> SftpDelivery:
        if not settings.export_sftp_host:
            raise InvalidInput("export_sftp_host", "is required when BACKOFFICE_EXPORT_DELIVERY is sftp")
        if not settings.export_sftp_user:
            raise InvalidInput("export_sftp_user", "is required when BACKOFFICE_EXPORT_DELIVERY is sftp")
        password = settings.export_sftp_password
        return cls(
            host=settings.export_sftp_host,
            user=settings.export_sftp_user,
            remote_dir=settings.export_sftp_dir,
            port=settings.export_sftp_port,
            password=password.get_secret_value() if password is not None else None,
            key_file=settings.export_sftp_key_file,
            known_hosts=settings.export_sftp_known_hosts,
        )

    @property
    def where(self) -> str:
        return f"sftp://{self.user}@{self.host}:{self.port}/{self.remote_dir.lstrip('/')}"

    def deliver(self, folder: str, files: Mapping[str, Path]) -> str:
        target = posixpath.join(self.remote_dir, folder)
        try:
            _run(self._upload(target, files))
        except (OSError, asyncssh.Error) as error:
            reason = str(error) or type(error).__name__
            raise DeliveryFailed(f"{self.where} ({folder})", reason) from error
        return f"{self.where.rstrip('/')}/{folder}"

    async def _upload(self, target: str, files: Mapping[str, Path]) -> None:
        options: dict[str, Any] = {
            "port": self.port,
            "username": self.user,
            "known_hosts": str(self.known_hosts) if self.known_hosts else (),
            "connect_timeout": CONNECT_TIMEOUT_S,
        }
        if self.key_file is not None:
            options["client_keys"] = [str(self.key_file)]
        elif self.password is not None:
            options["password"] = self.password
            options["client_keys"] = None
        async with asyncssh.connect(self.host, **options) as conn, conn.start_sftp_client() as sftp:
            await sftp.makedirs(target, exist_ok=True)
            for name, source in manifest_last(files):
                partial = posixpath.join(target, f".{name}.partial")
                await sftp.put(str(source), partial)
                await sftp.posix_rename(partial, posixpath.join(target, name))

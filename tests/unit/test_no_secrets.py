"""No secret in the repository, none in the settings' printout, none in the app's log lines.

The repository scan reads every file git would commit (tracked, or new and not ignored) and looks
for key-like strings: cloud and forge tokens, private keys, URLs with a real password, and long
random values given to a name that says password, secret, token or key. The log check runs the
database-facing parts of the app (migrations, a refused connection, logins) with every logger at
DEBUG and looks for the database password in what they wrote.
"""

from __future__ import annotations

import logging
import math
import re
import subprocess
from collections import Counter
from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from backoffice.config import Settings
from backoffice.domain.errors import AuthenticationFailed
from backoffice.services import sessions
from backoffice.services.unit_of_work import UnitOfWork

ROOT = Path(__file__).resolve().parents[2]
# Pinned package names and versions; nothing secret, and long enough to be slow to scan.
NOT_SCANNED = {"requirements.lock"}
# A URL's password that is a placeholder, not a secret: a template, an ellipsis, a documentation word.
PLACEHOLDER_PASSWORDS = re.compile(r"^(\{.*\}|\.\.\.|\*+|pw|password|secret|pass|x+|<[^>]*>|\$\{?\w+\}?)$", re.I)

KEY_LIKE = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Stripe live key": re.compile(r"\b[rs]k_live_[A-Za-z0-9]{16,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
}
URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^:/@\s'\"]+:([^@/\s'\"]+)@")
NAMED_SECRET = re.compile(
    r"(?i)(password|passwd|secret|token|api_?key|access_?key|private_?key)\w*[\"']?\s*[:=]\s*[\"']([A-Za-z0-9+/=_\-.]{16,})[\"']"
)


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _mixed(value: str) -> bool:
    """At least two of lower case, upper case and digits: a generated value, not a `snake_case_name`."""
    return sum(any(test(c) for c in value) for test in (str.islower, str.isupper, str.isdigit)) >= 2


def findings(text: str) -> list[str]:
    """What in `text` looks like a secret: one description per hit."""
    found = [name for name, pattern in KEY_LIKE.items() if pattern.search(text)]
    found += [
        f"password in a URL ({m.group(1)[:3]}...)"
        for m in URL_PASSWORD.finditer(text)
        if not PLACEHOLDER_PASSWORDS.match(m.group(1)) and len(m.group(1)) >= 8
    ]
    found += [
        f"random value for {m.group(1)!r}"
        for m in NAMED_SECRET.finditer(text)
        if _entropy(m.group(2)) >= 3.5 and _mixed(m.group(2))
    ]
    return found


def committed_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name and name not in NOT_SCANNED]


def test_the_scanner_finds_what_it_looks_for() -> None:
    # Built at run time, so this file holds none of them.
    samples = [
        "AKIA" + "Q7RT2MNB4XKP9ZLW",
        "-----BEGIN " + "OPENSSH PRIVATE KEY-----",
        "gh" + "p_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "DATABASE_URL=postgresql://app:" + "Zq8-vR3tKw@db.internal:5432/prod",
        "smtp_password = '" + "x9Fq2LmT7vR4pWz1" + "'",
    ]
    for sample in samples:
        assert findings(sample), sample
    for harmless in [
        "postgresql://user:pw@host:5432/db",
        'f"postgresql+psycopg://{SUPERUSER}:{self.password}@127.0.0.1"',
        'PASSWORD = "correct horse battery"',
        "token = 'aaaaaaaaaaaaaaaaaaaa'",
        'W_NEW_PASSWORD_AGAIN = "w_new_password_again"',
    ]:
        assert not findings(harmless), harmless


def test_no_key_like_string_in_the_repository() -> None:
    files = committed_files()
    assert len(files) > 100, "the scan must see the repository"
    hits = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary (images, PDFs) or deleted meanwhile
        hits += [f"{path.relative_to(ROOT)}: {what}" for what in findings(text)]
    assert hits == []


@pytest.mark.parametrize("name", [".env", ".data/postgres.credentials", ".data/postgres/postgresql.conf"])
def test_where_secrets_live_is_never_committed(name: str) -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT)
    assert ignored.returncode == 0, f"{name} must be ignored by git"


def test_secret_settings_are_hidden_when_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:" + "Zq8-vR3tKw@db/prod")
    monkeypatch.setenv("BACKOFFICE_APP_DATABASE_URL", "postgresql://web:" + "Lp4-mW9sQx@db/prod")
    settings = Settings()
    assert "Zq8-vR3tKw" not in repr(settings) and "Lp4-mW9sQx" not in repr(settings)
    # Every other setting that holds a secret is a SecretStr: it prints as '**********'.
    for name, field in Settings.model_fields.items():
        if re.search(r"password|secret|token|api_key", name):
            assert field.annotation in (SecretStr, SecretStr | None), f"{name} must be a SecretStr"


def test_log_lines_never_hold_the_database_password(
    database_url: str, db: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    from backoffice.db.engine import check_connection
    from backoffice.db.migrate import migrate

    password = make_url(database_url).password
    assert password, "the test database is reached with a password"
    f.user(db, "alice", "agent")
    caplog.set_level(logging.DEBUG)
    migrate(database_url)
    wrong = make_url(database_url).set(password="not-" + password).render_as_string(hide_password=False)
    with pytest.raises(Exception) as refused:
        check_connection(wrong)
    for attempt in (f.PASSWORD, "a wrong password"):
        try:
            with UnitOfWork(db) as uow:
                sessions.log_in(uow, "alice", attempt)
        except AuthenticationFailed:
            pass
    logged = (
        "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
        + f"\n{caplog.text}\n{refused.value}"
    )
    assert len(caplog.records) > 0, "the run logged something to look at"
    assert password not in logged

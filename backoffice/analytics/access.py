"""Who may read the dashboards: holders of `view_accounting`; a refusal is audited."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from backoffice.config import get_settings
from backoffice.domain.permissions import Actor
from backoffice.services import audit

PERMISSION = "view_accounting"


def dashboards_archive(engine: Engine, actor: Actor) -> Path:
    """The archive root the dashboards read (BACKOFFICE_ARCHIVE_DIR), once the right is checked."""
    audit.require(engine, actor, PERMISSION, "view_dashboards")
    return get_settings().archive_root

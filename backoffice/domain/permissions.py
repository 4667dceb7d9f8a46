"""Who is acting, and what the roles are. The role → permission mapping lives in the database
(app.role_permissions), edited by an admin; this module only names things."""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("agent", "senior_agent", "accountant", "admin")
SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    login: str
    role: str
    permissions: frozenset[str] = field(default_factory=frozenset)
    locale: str = "fr"

    def can(self, permission: str) -> bool:
        return permission in self.permissions

"""Domain errors: what a service refuses, in words the UI can show as they are."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every refusal a person can act on."""


class InvalidInput(DomainError):
    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class NotFound(DomainError):
    pass


class PermissionDenied(DomainError):
    def __init__(self, actor: str, permission: str) -> None:
        self.actor = actor
        self.permission = permission
        super().__init__(f"{actor} is not allowed to do this (needs the '{permission}' permission)")


class StaleVersion(DomainError):
    def __init__(self, what: str, expected: int, current: int) -> None:
        super().__init__(
            f"{what} was changed by someone else (your version {expected}, now {current}); reload it and try again"
        )


class IdempotencyConflict(DomainError):
    def __init__(self, key: str) -> None:
        super().__init__(f"request key {key} was already used for a different request")


class AuthenticationFailed(DomainError):
    def __init__(self) -> None:
        super().__init__("unknown login or wrong password")


class DatabaseInterrupted(DomainError):
    """The connection to PostgreSQL was lost during an action (server restarted, network cut).

    The action's transaction is rolled back by the server, so nothing of it was saved, unless the
    loss came while the commit itself was answered: then the retry, made with the same idempotency
    key, returns the first result instead of applying the action twice.
    """

    def __init__(self) -> None:
        super().__init__("the database connection was lost: nothing was saved, retry")


class ConcurrentConflict(DomainError):
    """PostgreSQL aborted the action to break a deadlock or a serialisation conflict with another
    action saved at the same moment (SQLSTATE 40P01 / 40001). Nothing of it was saved; a retry,
    made with the same idempotency key, applies it once."""

    def __init__(self) -> None:
        super().__init__("another action on the same records was saved at the same moment: nothing was saved, retry")

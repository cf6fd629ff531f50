"""Who is calling, and the tenancy checks every service applies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from o2oloop.auth.models import Role
from o2oloop.errors import Forbidden, NotFound

MERCHANT_ROLES = frozenset({Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF, Role.TERMINAL})


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: Role
    merchant_id: str | None = None
    store_id: str | None = None
    staff_id: str | None = None
    terminal_id: str | None = None
    consumer_id: str | None = None

    @property
    def is_platform(self) -> bool:
        return self.role is Role.PLATFORM_ADMIN

    def can_see_merchant(self, merchant_id: str) -> bool:
        return self.is_platform or (self.role in MERCHANT_ROLES and self.merchant_id == merchant_id)


def require_merchant(principal: Principal, merchant_id: str, what: str = "merchant") -> None:
    """404 — never 403 — for another tenant's data, so existence does not leak."""
    if not principal.can_see_merchant(merchant_id):
        raise NotFound(f"no {what} with this id")


def require_merchant_admin(principal: Principal, merchant_id: str) -> None:
    require_merchant(principal, merchant_id)
    if principal.role not in (Role.PLATFORM_ADMIN, Role.MERCHANT_ADMIN):
        raise Forbidden("this needs a merchant admin or platform admin key")


def require_merchant_staff(principal: Principal, merchant_id: str) -> None:
    """Admins and staff of the merchant (not terminals, not consumers)."""
    require_merchant(principal, merchant_id)
    if principal.role is Role.TERMINAL:
        raise Forbidden("terminal keys can act only through /v1/terminal")


def require_consumer(principal: Principal, detail: str = "this needs a consumer key") -> str:
    """The calling consumer's id; any other key is refused."""
    if principal.role is not Role.CONSUMER or principal.consumer_id is None:
        raise Forbidden(detail)
    return principal.consumer_id


def require_terminal(principal: Principal, detail: str = "this needs a terminal key") -> str:
    """The calling terminal's id (its key also names its store and merchant); any other key
    is refused."""
    if (
        principal.role is not Role.TERMINAL
        or principal.terminal_id is None
        or principal.store_id is None
        or principal.merchant_id is None
    ):
        raise Forbidden(detail)
    return principal.terminal_id


def require_platform(principal: Principal) -> None:
    if not principal.is_platform:
        raise Forbidden("this needs a platform admin key")


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(f"this needs one of these roles: {allowed}")


Owned = TypeVar("Owned")


def get_owned(
    session: Session, model: type[Owned], row_id: str, *, merchant_id: str, what: str
) -> Owned:
    """A merchant's own row by id; another merchant's row is as absent as a missing one."""
    row: Any = session.get(model, row_id)
    if row is None or row.merchant_id != merchant_id:
        raise NotFound(f"no {what} with this id")
    return row

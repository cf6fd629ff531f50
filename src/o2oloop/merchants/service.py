"""Use cases for merchants, stores, staff and terminals. Every query is scoped by tenant."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from o2oloop import clock, events
from o2oloop.auth import service as keys
from o2oloop.auth.models import ApiKey, Role
from o2oloop.auth.principal import (
    Principal,
    get_owned,
    require_merchant,
    require_merchant_admin,
    require_merchant_staff,
    require_platform,
    require_terminal,
)
from o2oloop.db import new_id
from o2oloop.errors import Conflict, Forbidden, NotFound
from o2oloop.merchants import schemas
from o2oloop.merchants.events import MerchantClosed, StoreClosed, StorePlaced
from o2oloop.merchants.models import Merchant, Staff, StaffRole, Store, Terminal
from o2oloop.pagination import paginate

Row = TypeVar("Row", Merchant, Store, Staff, Terminal)

# ---- merchants ---------------------------------------------------------------------------


def create_merchant(
    session: Session, *, principal: Principal, data: schemas.MerchantCreate
) -> tuple[Merchant, Staff, str, ApiKey]:
    """A platform admin onboards a merchant; its first admin key comes back once."""
    require_platform(principal)
    now = clock.now()
    merchant = Merchant(
        id=new_id("mer"), created_at=now, updated_at=now, active=True, **data.model_dump()
    )
    session.add(merchant)
    session.flush()
    owner = Staff(
        id=new_id("stf"),
        merchant_id=merchant.id,
        name="Owner",
        role=StaffRole.ADMIN,
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(owner)
    session.flush()
    key, token = keys.issue_key(
        session, role=Role.MERCHANT_ADMIN, label="owner", merchant_id=merchant.id, staff_id=owner.id
    )
    return merchant, owner, token, key


def get_merchant(session: Session, *, principal: Principal, merchant_id: str) -> Merchant:
    require_merchant(principal, merchant_id)
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no merchant with this id")
    return merchant


def list_merchants(
    session: Session, *, principal: Principal, cursor: str | None, limit: int
) -> tuple[list[Merchant], str | None]:
    query = select(Merchant)
    if not principal.is_platform:
        if principal.merchant_id is None:
            raise Forbidden("consumer keys cannot list merchants")
        query = query.where(Merchant.id == principal.merchant_id)
    return paginate(session, query, Merchant.id, cursor=cursor, limit=limit)


def update_merchant(
    session: Session, *, principal: Principal, merchant_id: str, data: schemas.MerchantUpdate
) -> Merchant:
    require_merchant_admin(principal, merchant_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "commission_bps" in changes and not principal.is_platform:
        raise Forbidden("only the platform sets a merchant's commission rate")
    merchant = get_merchant(session, principal=principal, merchant_id=merchant_id)
    return _apply(merchant, changes)


def deactivate_merchant(session: Session, *, principal: Principal, merchant_id: str) -> Merchant:
    """A closed merchant: every key of it stops working at once."""
    require_merchant(principal, merchant_id)
    require_platform(principal)
    merchant = get_merchant(session, principal=principal, merchant_id=merchant_id)
    merchant.active = False
    merchant.updated_at = clock.now()
    keys.revoke_keys_where(session, merchant_id=merchant.id)
    session.flush()
    events.record(session, MerchantClosed(merchant_id=merchant.id))
    return merchant


def _apply(row: Row, changes: dict[str, Any]) -> Row:
    for field, value in changes.items():
        setattr(row, field, value)
    row.updated_at = clock.now()
    return row


# ---- stores ------------------------------------------------------------------------------


def _active_merchant(session: Session, principal: Principal, merchant_id: str) -> Merchant:
    merchant = get_merchant(session, principal=principal, merchant_id=merchant_id)
    if not merchant.active:
        raise Conflict("this merchant is deactivated")
    return merchant


def create_store(
    session: Session, *, principal: Principal, merchant_id: str, data: schemas.StoreCreate
) -> Store:
    require_merchant_admin(principal, merchant_id)
    merchant = _active_merchant(session, principal, merchant_id)
    now = clock.now()
    values = data.model_dump(mode="json")
    values["timezone"] = values["timezone"] or merchant.timezone
    store = Store(
        id=new_id("sto"),
        merchant_id=merchant.id,
        active=True,
        created_at=now,
        updated_at=now,
        **values,
    )
    session.add(store)
    session.flush()
    _placed(session, store)
    return store


def get_store(session: Session, *, principal: Principal, merchant_id: str, store_id: str) -> Store:
    """Terminals may read their own store; staff and admins any store of their merchant."""
    require_merchant(principal, merchant_id, "store")
    if principal.role is Role.TERMINAL and principal.store_id != store_id:
        raise NotFound("no store with this id")
    store = get_owned(session, Store, store_id, merchant_id=merchant_id, what="store")
    return store


def list_stores(
    session: Session, *, principal: Principal, merchant_id: str, cursor: str | None, limit: int
) -> tuple[list[Store], str | None]:
    require_merchant_staff(principal, merchant_id)
    query = select(Store).where(Store.merchant_id == merchant_id)
    return paginate(session, query, Store.id, cursor=cursor, limit=limit)


def update_store(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    store_id: str,
    data: schemas.StoreUpdate,
) -> Store:
    require_merchant_admin(principal, merchant_id)
    store = get_store(session, principal=principal, merchant_id=merchant_id, store_id=store_id)
    changes = data.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    _apply(store, changes)
    if "latitude" in changes or "longitude" in changes:
        _placed(session, store)
    return store


def _placed(session: Session, store: Store) -> None:
    placed = StorePlaced(
        merchant_id=store.merchant_id,
        store_id=store.id,
        latitude=store.latitude,
        longitude=store.longitude,
    )
    events.record(session, placed)


def deactivate_store(
    session: Session, *, principal: Principal, merchant_id: str, store_id: str
) -> Store:
    """A closed store: its terminals are deactivated with it and their keys revoked."""
    require_merchant_admin(principal, merchant_id)
    store = get_store(session, principal=principal, merchant_id=merchant_id, store_id=store_id)
    store.active = False
    store.updated_at = clock.now()
    for terminal in session.scalars(select(Terminal).where(Terminal.store_id == store.id)):
        _deactivate_terminal(session, terminal)
    session.flush()
    events.record(session, StoreClosed(merchant_id=store.merchant_id, store_id=store.id))
    return store


# ---- staff -------------------------------------------------------------------------------


def create_staff(
    session: Session, *, principal: Principal, merchant_id: str, data: schemas.StaffCreate
) -> tuple[Staff, str, ApiKey]:
    require_merchant_admin(principal, merchant_id)
    merchant = _active_merchant(session, principal, merchant_id)
    now = clock.now()
    staff = Staff(
        id=new_id("stf"),
        merchant_id=merchant.id,
        name=data.name,
        role=data.role,
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(staff)
    session.flush()
    role = Role.MERCHANT_ADMIN if data.role is StaffRole.ADMIN else Role.MERCHANT_STAFF
    key, token = keys.issue_key(
        session, role=role, label=data.name, merchant_id=merchant.id, staff_id=staff.id
    )
    return staff, token, key


def get_staff(session: Session, *, principal: Principal, merchant_id: str, staff_id: str) -> Staff:
    require_merchant_staff(principal, merchant_id)
    staff = get_owned(session, Staff, staff_id, merchant_id=merchant_id, what="staff member")
    return staff


def list_staff(
    session: Session, *, principal: Principal, merchant_id: str, cursor: str | None, limit: int
) -> tuple[list[Staff], str | None]:
    require_merchant_staff(principal, merchant_id)
    query = select(Staff).where(Staff.merchant_id == merchant_id)
    return paginate(session, query, Staff.id, cursor=cursor, limit=limit)


def update_staff(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    staff_id: str,
    data: schemas.StaffUpdate,
) -> Staff:
    require_merchant_admin(principal, merchant_id)
    staff = get_staff(session, principal=principal, merchant_id=merchant_id, staff_id=staff_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "role" in changes and changes["role"] != staff.role:
        # A role change takes effect through new keys: old ones carry the old role.
        keys.revoke_keys_where(session, staff_id=staff.id)
    return _apply(staff, changes)


def deactivate_staff(
    session: Session, *, principal: Principal, merchant_id: str, staff_id: str
) -> Staff:
    require_merchant_admin(principal, merchant_id)
    staff = get_staff(session, principal=principal, merchant_id=merchant_id, staff_id=staff_id)
    staff.active = False
    staff.updated_at = clock.now()
    keys.revoke_keys_where(session, staff_id=staff.id)
    session.flush()
    return staff


# ---- terminals ---------------------------------------------------------------------------


def create_terminal(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    store_id: str,
    data: schemas.TerminalCreate,
) -> tuple[Terminal, str, ApiKey]:
    require_merchant_admin(principal, merchant_id)
    _active_merchant(session, principal, merchant_id)
    store = get_store(session, principal=principal, merchant_id=merchant_id, store_id=store_id)
    if not store.active:
        raise Conflict("this store is deactivated")
    now = clock.now()
    terminal = Terminal(
        id=new_id("trm"),
        merchant_id=merchant_id,
        store_id=store.id,
        name=data.name,
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(terminal)
    session.flush()
    key, token = keys.issue_key(
        session,
        role=Role.TERMINAL,
        label=data.name,
        merchant_id=merchant_id,
        store_id=store.id,
        terminal_id=terminal.id,
    )
    return terminal, token, key


def get_terminal(
    session: Session, *, principal: Principal, merchant_id: str, terminal_id: str
) -> Terminal:
    require_merchant_staff(principal, merchant_id)
    terminal = get_owned(session, Terminal, terminal_id, merchant_id=merchant_id, what="terminal")
    return terminal


def list_terminals(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    store_id: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Terminal], str | None]:
    require_merchant_staff(principal, merchant_id)
    query = select(Terminal).where(Terminal.merchant_id == merchant_id)
    if store_id is not None:
        query = query.where(Terminal.store_id == store_id)
    return paginate(session, query, Terminal.id, cursor=cursor, limit=limit)


def update_terminal(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    terminal_id: str,
    data: schemas.TerminalUpdate,
) -> Terminal:
    require_merchant_admin(principal, merchant_id)
    terminal = get_terminal(
        session, principal=principal, merchant_id=merchant_id, terminal_id=terminal_id
    )
    return _apply(terminal, data.model_dump(exclude_unset=True, exclude_none=True))


def deactivate_terminal(
    session: Session, *, principal: Principal, merchant_id: str, terminal_id: str
) -> Terminal:
    require_merchant_admin(principal, merchant_id)
    terminal = get_terminal(
        session, principal=principal, merchant_id=merchant_id, terminal_id=terminal_id
    )
    _deactivate_terminal(session, terminal)
    session.flush()
    return terminal


def _deactivate_terminal(session: Session, terminal: Terminal) -> None:
    terminal.active = False
    terminal.updated_at = clock.now()
    keys.revoke_keys_where(session, terminal_id=terminal.id)


def terminal_self(session: Session, *, principal: Principal) -> tuple[Terminal, Store]:
    """The calling terminal and the store it is bound to."""
    require_terminal(principal)
    terminal = session.get(Terminal, principal.terminal_id)
    store = session.get(Store, principal.store_id)
    if terminal is None or store is None:
        raise NotFound("terminal not found")
    return terminal, store

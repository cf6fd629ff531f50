"""Routes for merchants, stores, staff and terminals: parse, call the service, shape."""

from __future__ import annotations

from fastapi import APIRouter

from o2oloop.http import DB, IDEMPOTENT, Caller, Cursor, Limit, Reading, problems
from o2oloop.merchants import schemas, service
from o2oloop.pagination import Page, page_of

router = APIRouter(prefix="/v1", tags=["merchants"], responses=problems(401, 403, 404, 409, 422))


@router.post("/merchants", status_code=201, dependencies=IDEMPOTENT)
def create_merchant(
    data: schemas.MerchantCreate, db: DB, caller: Caller
) -> schemas.MerchantCreated:
    with db.transaction() as session:
        merchant, owner, token, key = service.create_merchant(session, principal=caller, data=data)
        return schemas.MerchantCreated(
            merchant=schemas.MerchantRead.model_validate(merchant),
            staff_id=owner.id,
            admin_key=schemas.KeyIssued(key_id=key.id, token=token, role=key.role.value),
        )


@router.get("/merchants")
def list_merchants(
    session: Reading, caller: Caller, cursor: Cursor = None, limit: Limit = 50
) -> Page[schemas.MerchantRead]:
    rows, next_cursor = service.list_merchants(
        session, principal=caller, cursor=cursor, limit=limit
    )
    return page_of(schemas.MerchantRead, rows, next_cursor)


@router.get("/merchants/{merchant_id}")
def get_merchant(merchant_id: str, session: Reading, caller: Caller) -> schemas.MerchantRead:
    merchant = service.get_merchant(session, principal=caller, merchant_id=merchant_id)
    return schemas.MerchantRead.model_validate(merchant)


@router.patch("/merchants/{merchant_id}")
def update_merchant(
    merchant_id: str, data: schemas.MerchantUpdate, db: DB, caller: Caller
) -> schemas.MerchantRead:
    with db.transaction() as session:
        merchant = service.update_merchant(
            session, principal=caller, merchant_id=merchant_id, data=data
        )
        return schemas.MerchantRead.model_validate(merchant)


@router.post("/merchants/{merchant_id}/deactivate", dependencies=IDEMPOTENT)
def deactivate_merchant(merchant_id: str, db: DB, caller: Caller) -> schemas.MerchantRead:
    with db.transaction() as session:
        merchant = service.deactivate_merchant(session, principal=caller, merchant_id=merchant_id)
        return schemas.MerchantRead.model_validate(merchant)


# ---- stores ------------------------------------------------------------------------------


@router.post("/merchants/{merchant_id}/stores", status_code=201, dependencies=IDEMPOTENT)
def create_store(
    merchant_id: str, data: schemas.StoreCreate, db: DB, caller: Caller
) -> schemas.StoreRead:
    with db.transaction() as session:
        store = service.create_store(session, principal=caller, merchant_id=merchant_id, data=data)
        return schemas.StoreRead.model_validate(store)


@router.get("/merchants/{merchant_id}/stores")
def list_stores(
    merchant_id: str, session: Reading, caller: Caller, cursor: Cursor = None, limit: Limit = 50
) -> Page[schemas.StoreRead]:
    rows, next_cursor = service.list_stores(
        session, principal=caller, merchant_id=merchant_id, cursor=cursor, limit=limit
    )
    return page_of(schemas.StoreRead, rows, next_cursor)


@router.get("/merchants/{merchant_id}/stores/{store_id}")
def get_store(
    merchant_id: str, store_id: str, session: Reading, caller: Caller
) -> schemas.StoreRead:
    store = service.get_store(session, principal=caller, merchant_id=merchant_id, store_id=store_id)
    return schemas.StoreRead.model_validate(store)


@router.patch("/merchants/{merchant_id}/stores/{store_id}")
def update_store(
    merchant_id: str, store_id: str, data: schemas.StoreUpdate, db: DB, caller: Caller
) -> schemas.StoreRead:
    with db.transaction() as session:
        store = service.update_store(
            session, principal=caller, merchant_id=merchant_id, store_id=store_id, data=data
        )
        return schemas.StoreRead.model_validate(store)


@router.post("/merchants/{merchant_id}/stores/{store_id}/deactivate", dependencies=IDEMPOTENT)
def deactivate_store(merchant_id: str, store_id: str, db: DB, caller: Caller) -> schemas.StoreRead:
    with db.transaction() as session:
        store = service.deactivate_store(
            session, principal=caller, merchant_id=merchant_id, store_id=store_id
        )
        return schemas.StoreRead.model_validate(store)


# ---- staff -------------------------------------------------------------------------------


@router.post("/merchants/{merchant_id}/staff", status_code=201, dependencies=IDEMPOTENT)
def create_staff(
    merchant_id: str, data: schemas.StaffCreate, db: DB, caller: Caller
) -> schemas.StaffCreated:
    with db.transaction() as session:
        staff, token, key = service.create_staff(
            session, principal=caller, merchant_id=merchant_id, data=data
        )
        return schemas.StaffCreated(
            staff=schemas.StaffRead.model_validate(staff),
            key=schemas.KeyIssued(key_id=key.id, token=token, role=key.role.value),
        )


@router.get("/merchants/{merchant_id}/staff")
def list_staff(
    merchant_id: str, session: Reading, caller: Caller, cursor: Cursor = None, limit: Limit = 50
) -> Page[schemas.StaffRead]:
    rows, next_cursor = service.list_staff(
        session, principal=caller, merchant_id=merchant_id, cursor=cursor, limit=limit
    )
    return page_of(schemas.StaffRead, rows, next_cursor)


@router.get("/merchants/{merchant_id}/staff/{staff_id}")
def get_staff(
    merchant_id: str, staff_id: str, session: Reading, caller: Caller
) -> schemas.StaffRead:
    staff = service.get_staff(session, principal=caller, merchant_id=merchant_id, staff_id=staff_id)
    return schemas.StaffRead.model_validate(staff)


@router.patch("/merchants/{merchant_id}/staff/{staff_id}")
def update_staff(
    merchant_id: str, staff_id: str, data: schemas.StaffUpdate, db: DB, caller: Caller
) -> schemas.StaffRead:
    with db.transaction() as session:
        staff = service.update_staff(
            session, principal=caller, merchant_id=merchant_id, staff_id=staff_id, data=data
        )
        return schemas.StaffRead.model_validate(staff)


@router.post("/merchants/{merchant_id}/staff/{staff_id}/deactivate", dependencies=IDEMPOTENT)
def deactivate_staff(merchant_id: str, staff_id: str, db: DB, caller: Caller) -> schemas.StaffRead:
    with db.transaction() as session:
        staff = service.deactivate_staff(
            session, principal=caller, merchant_id=merchant_id, staff_id=staff_id
        )
        return schemas.StaffRead.model_validate(staff)


# ---- terminals ---------------------------------------------------------------------------


@router.post(
    "/merchants/{merchant_id}/stores/{store_id}/terminals",
    status_code=201,
    dependencies=IDEMPOTENT,
)
def create_terminal(
    merchant_id: str, store_id: str, data: schemas.TerminalCreate, db: DB, caller: Caller
) -> schemas.TerminalCreated:
    with db.transaction() as session:
        terminal, token, key = service.create_terminal(
            session, principal=caller, merchant_id=merchant_id, store_id=store_id, data=data
        )
        return schemas.TerminalCreated(
            terminal=schemas.TerminalRead.model_validate(terminal),
            key=schemas.KeyIssued(key_id=key.id, token=token, role=key.role.value),
        )


@router.get("/merchants/{merchant_id}/terminals")
def list_terminals(
    merchant_id: str,
    session: Reading,
    caller: Caller,
    store_id: str | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[schemas.TerminalRead]:
    rows, next_cursor = service.list_terminals(
        session,
        principal=caller,
        merchant_id=merchant_id,
        store_id=store_id,
        cursor=cursor,
        limit=limit,
    )
    return page_of(schemas.TerminalRead, rows, next_cursor)


@router.get("/merchants/{merchant_id}/terminals/{terminal_id}")
def get_terminal(
    merchant_id: str, terminal_id: str, session: Reading, caller: Caller
) -> schemas.TerminalRead:
    terminal = service.get_terminal(
        session, principal=caller, merchant_id=merchant_id, terminal_id=terminal_id
    )
    return schemas.TerminalRead.model_validate(terminal)


@router.patch("/merchants/{merchant_id}/terminals/{terminal_id}")
def update_terminal(
    merchant_id: str, terminal_id: str, data: schemas.TerminalUpdate, db: DB, caller: Caller
) -> schemas.TerminalRead:
    with db.transaction() as session:
        terminal = service.update_terminal(
            session, principal=caller, merchant_id=merchant_id, terminal_id=terminal_id, data=data
        )
        return schemas.TerminalRead.model_validate(terminal)


@router.post("/merchants/{merchant_id}/terminals/{terminal_id}/deactivate", dependencies=IDEMPOTENT)
def deactivate_terminal(
    merchant_id: str, terminal_id: str, db: DB, caller: Caller
) -> schemas.TerminalRead:
    with db.transaction() as session:
        terminal = service.deactivate_terminal(
            session, principal=caller, merchant_id=merchant_id, terminal_id=terminal_id
        )
        return schemas.TerminalRead.model_validate(terminal)


@router.get("/terminal/me")
def terminal_self(session: Reading, caller: Caller) -> schemas.TerminalSelf:
    terminal, store = service.terminal_self(session, principal=caller)
    return schemas.TerminalSelf(
        terminal=schemas.TerminalRead.model_validate(terminal),
        store=schemas.StoreRead.model_validate(store),
    )

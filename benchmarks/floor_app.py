"""The floor beside the counter: a bare FastAPI endpoint that does one conditional UPDATE.

``POST /v1/terminal/redemptions {"code": ..., "bill_amount": ...}`` takes the code with
``UPDATE floor_codes SET used = 1 WHERE code = ? AND used = 0`` in its own transaction on
a DB-API connection of its thread, and answers 201 (or 422 if the code was taken). No
authentication, no rules, no log of attempts: what one write per request costs through
the same server, framework and database, so the product's figure can be read against it.

Served by ``redemption_http.py`` with ``uvicorn floor_app:app --workers 2``; the database
comes from ``FLOOR_DATABASE_URL`` (``sqlite:///…`` or ``postgresql…://…``).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy.engine import make_url

URL = make_url(os.environ.get("FLOOR_DATABASE_URL", "sqlite:///floor.db"))
_local = threading.local()


def _connect() -> Any:
    if URL.get_backend_name() == "sqlite":
        import sqlite3

        connection = sqlite3.connect(URL.database, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection
    import psycopg

    conninfo = URL.set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(conninfo)


def _connection() -> Any:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = _connect()
    return connection


def _take(code: str) -> int:
    connection = _connection()
    if URL.get_backend_name() == "sqlite":
        cursor = connection.execute("BEGIN IMMEDIATE")
        cursor = connection.execute(
            "UPDATE floor_codes SET used = 1 WHERE code = ? AND used = 0", (code,)
        )
        connection.execute("COMMIT")
        return cursor.rowcount
    with connection.cursor() as cursor:
        cursor.execute("UPDATE floor_codes SET used = 1 WHERE code = %s AND used = 0", (code,))
        taken = cursor.rowcount
    connection.commit()
    return taken


class Take(BaseModel):
    code: str = Field(max_length=64)
    bill_amount: int | None = None


app = FastAPI()


@app.post("/v1/terminal/redemptions", status_code=201)
def take(data: Take) -> dict[str, Any]:
    if _take(data.code) != 1:
        raise HTTPException(422, "code taken")
    return {"code": data.code, "taken": True}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def prepare(connection: Any, codes: list[str], *, sqlite: bool) -> None:
    """The floor's table of codes, on a DB-API connection of the benchmark's database."""
    mark = "?" if sqlite else "%s"
    cursor = connection.cursor()
    if sqlite:
        cursor.execute("BEGIN")  # the connection is in autocommit mode
    cursor.execute("CREATE TABLE floor_codes (code VARCHAR(64) PRIMARY KEY, used INTEGER)")
    cursor.executemany(
        f"INSERT INTO floor_codes (code, used) VALUES ({mark}, 0)", [(c,) for c in codes]
    )
    connection.commit()

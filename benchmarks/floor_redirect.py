"""The floor beside the tracking-link redirect: a bare FastAPI endpoint, one indexed read.

``GET /t/{link_id}`` reads the publication's offer id by primary key on a DB-API
connection of its thread and answers 302 to ``/offers/{offer_id}``; ``GET /healthz``
answers 200. No token check, no middleware, no counting: what one indexed read and a
redirect cost through the same server, framework and database, so the product's figure can
be read against it. Served by ``redirects.py`` with ``uvicorn floor_redirect:app
--workers 2``; the database comes from ``FLOOR_DATABASE_URL``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import RedirectResponse
from sqlalchemy.engine import make_url

URL = make_url(os.environ.get("FLOOR_DATABASE_URL", "sqlite:///floor.db"))
_local = threading.local()
app = FastAPI()


def _connection() -> Any:
    connection = getattr(_local, "connection", None)
    if connection is None:
        if URL.get_backend_name() == "sqlite":
            import sqlite3

            connection = sqlite3.connect(URL.database, isolation_level=None)
        else:
            import psycopg

            conninfo = URL.set(drivername="postgresql").render_as_string(hide_password=False)
            connection = psycopg.connect(conninfo, autocommit=True)
        _local.connection = connection
    return connection


def _offer_of(link_id: str) -> str | None:
    mark = "?" if URL.get_backend_name() == "sqlite" else "%s"
    cursor = _connection().execute(
        f"SELECT offer_id FROM publications WHERE id = {mark}", (link_id,)
    )
    row = cursor.fetchone()
    return None if row is None else row[0]


@app.get("/t/{link_id}")
def follow(link_id: str) -> RedirectResponse:
    offer_id = _offer_of(link_id)
    if offer_id is None:
        raise HTTPException(404)
    return RedirectResponse(f"/offers/{offer_id}", status_code=302)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}

"""ASGI middleware that gives every POST the Idempotency-Key semantics of payment APIs."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from anyio import to_thread

from o2oloop.db import Database
from o2oloop.errors import PROBLEM_MEDIA_TYPE, InvalidInput, ProblemError
from o2oloop.idempotency import service
from o2oloop.idempotency.service import Replay

HEADER = b"idempotency-key"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

Scope = dict[str, Any]
Message = dict[str, Any]


class IdempotencyMiddleware:
    def __init__(self, app: Any, *, database: Callable[[], Database], ttl: timedelta) -> None:
        self.app = app
        self.database = database
        self.ttl = ttl

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_key = headers.get(HEADER)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not _VALID_KEY.match(key):
            await _send_problem(
                send,
                InvalidInput("Idempotency-Key must be 1 to 255 printable ASCII characters"),
            )
            return

        body = await _read_body(receive)
        credential = headers.get(b"authorization", b"")
        scope_hash = hashlib.sha256(credential).hexdigest()
        fingerprint = hashlib.sha256(
            b"\0".join(
                [
                    scope["method"].encode(),
                    scope["path"].encode(),
                    scope.get("query_string", b""),
                    body,
                ]
            )
        ).hexdigest()
        db = self.database()
        try:
            claimed = await to_thread.run_sync(
                lambda: service.claim(
                    db, scope=scope_hash, key=key, fingerprint=fingerprint, ttl=self.ttl
                )
            )
        except ProblemError as error:
            await _send_problem(send, error)
            return
        if isinstance(claimed, Replay):
            await _send_replay(send, claimed)
            return

        pending = [body]

        async def replay_receive() -> Message:
            if not pending:
                return await receive()
            return {"type": "http.request", "body": pending.pop(), "more_body": False}

        captured: dict[str, Any] = {"status": 500, "content_type": None, "body": bytearray()}
        held: list[Message] = []

        async def hold_send(message: Message) -> None:
            # Held back until the record is stored: a retry arriving the moment the client
            # sees this answer must find it replayable, not still running.
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        captured["content_type"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                captured["body"].extend(message.get("body", b""))
            held.append(message)

        try:
            await self.app(scope, replay_receive, hold_send)
        except BaseException:
            await to_thread.run_sync(lambda: service.release(db, record_id=claimed))
            raise
        status = captured["status"]
        if status >= 500 or status in (401, 429):
            # Not an answer to the request itself: let a retry run it afresh.
            await to_thread.run_sync(lambda: service.release(db, record_id=claimed))
        else:
            await to_thread.run_sync(
                lambda: service.complete(
                    db,
                    record_id=claimed,
                    status_code=status,
                    content_type=captured["content_type"],
                    body=bytes(captured["body"]),
                )
            )
        for message in held:
            await send(message)


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_problem(send: Any, error: ProblemError) -> None:
    payload = json.dumps(error.to_problem()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _send_replay(send: Any, replay: Replay) -> None:
    headers = [
        (b"content-length", str(len(replay.body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    if replay.content_type:
        headers.append((b"content-type", replay.content_type.encode("latin-1")))
    await send({"type": "http.response.start", "status": replay.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": replay.body})

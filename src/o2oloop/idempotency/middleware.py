"""ASGI middleware that gives every POST the Idempotency-Key semantics of payment APIs.

The answer is stored in the same transaction as the change it answers for (see
`idempotency.service`): the route's transaction stays open until the route has answered,
then the answer is written into it and both commit at once. Only then is the answer sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from anyio import CapacityLimiter, to_thread

from o2oloop.db import ANSWER_BOUND, Database
from o2oloop.errors import (
    PROBLEM_MEDIA_TYPE,
    IdempotencyInProgress,
    InvalidInput,
    ProblemError,
    ServiceBusy,
)
from o2oloop.idempotency.service import AnsweredElsewhere, KeyedRequest, Replay, kept

HEADER = b"idempotency-key"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# How long a request whose key another execution is answering waits for that answer.
WAIT_FOR_ANSWER_SECONDS = 2.0

log = logging.getLogger("o2oloop.idempotency")

Scope = dict[str, Any]
Message = dict[str, Any]


class IdempotencyMiddleware:
    def __init__(self, app: Any, *, database: Callable[[], Database], ttl: timedelta) -> None:
        self.app = app
        self.database = database
        self.ttl = ttl
        # Commits of held transactions never wait for a thread that routes hold: a route's
        # thread may itself be waiting for the very locks such a commit releases.
        self._committers: CapacityLimiter | None = None

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
        fingerprint = hashlib.sha256(
            b"\0".join([b"POST", scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        keyed = KeyedRequest(
            scope=hashlib.sha256(headers.get(b"authorization", b"")).hexdigest(),
            key=key,
            fingerprint=fingerprint,
            ttl=self.ttl,
        )
        pending = [body]

        async def replay_receive() -> Message:
            if not pending:
                return await receive()
            return {"type": "http.request", "body": pending.pop(), "more_body": False}

        answer = _Captured(keyed)
        token = ANSWER_BOUND.set(keyed)
        try:
            await self.app(scope, replay_receive, answer.hold)
        except AnsweredElsewhere:
            pass
        except BaseException:
            keyed.abandon()  # here, not in a thread: this task may be being cancelled
            raise
        finally:
            keyed.answered = True
            ANSWER_BOUND.reset(token)
        try:
            messages = await self._settle(self.database(), keyed, answer)
        except ProblemError as error:
            await _send_problem(send, error)
            return
        for message in messages:
            await send(message)

    async def _settle(self, db: Database, keyed: KeyedRequest, answer: _Captured) -> list[Message]:
        """Store the answer with the change (or find the one stored by whoever came first)."""
        if keyed.replay is not None:
            return _replay_messages(keyed.replay)
        if keyed.taken:
            return _replay_messages(await _answer_of_other(db, keyed))
        if keyed.held is not None:
            if not kept(answer.status):
                await self._end(keyed.abandon)
                return answer.messages
            try:
                await self._end(
                    lambda: keyed.finish(
                        status=answer.status, content_type=answer.content_type, body=answer.body
                    )
                )
            except Exception:
                log.exception("could not commit a change with its answer")
                raise ServiceBusy("the change could not be stored; retry shortly") from None
            return answer.messages
        if keyed.stored or not kept(answer.status):
            return answer.messages
        try:
            stored = await db.run_transaction(
                lambda tx: keyed.store(
                    tx, status=answer.status, content_type=answer.content_type, body=answer.body
                )
            )
        except Exception:
            # Only an answer without a change is stored here: a retry may run it again.
            log.warning("could not store an answer for Idempotency-Key retries", exc_info=True)
            return answer.messages
        if not stored:
            return _replay_messages(await _answer_of_other(db, keyed))
        return answer.messages

    async def _end(self, end: Callable[[], None]) -> None:
        if self._committers is None:
            self._committers = CapacityLimiter(8)
        await to_thread.run_sync(end, limiter=self._committers)


class _Captured:
    """The app's answer, held back until it is stored: a retry arriving the moment the client
    sees it must find it stored."""

    def __init__(self, keyed: KeyedRequest) -> None:
        self.keyed = keyed
        self.status = 500
        self.content_type: str | None = None
        self.chunks: list[bytes] = []
        self.messages: list[Message] = []

    async def hold(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            for name, value in message.get("headers", []):
                if name.lower() == b"content-type":
                    self.content_type = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.keyed.answered = True  # what runs now (background tasks) is not its change
        self.messages.append(message)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


async def _answer_of_other(db: Database, keyed: KeyedRequest) -> Replay:
    """The answer of the execution that holds the key: it has committed by now on either
    database, unless its transaction failed at the last moment; then the caller retries."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_FOR_ANSWER_SECONDS
    pause = 0.01
    while True:
        found = await db.run_reading(keyed.lookup)
        if found is not None:
            return found
        if loop.time() > deadline:
            raise IdempotencyInProgress(
                "another request with this Idempotency-Key has not finished; retry shortly",
                retry_after_seconds=1,
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.2)


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
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(payload)).encode()),
    ]
    retry_after = error.extensions.get("retry_after_seconds")
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _replay_messages(replay: Replay) -> list[Message]:
    headers = [
        (b"content-length", str(len(replay.body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    if replay.content_type:
        headers.append((b"content-type", replay.content_type.encode("latin-1")))
    return [
        {"type": "http.response.start", "status": replay.status_code, "headers": headers},
        {"type": "http.response.body", "body": replay.body},
    ]

"""A server killed with SIGKILL mid-request: every retry with its key gets the first answer
or a clean first execution, never a lasting 409; nothing is lost or done twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from factories import bearer, consumer_principal, make_consumer, make_offer, make_tenant
from o2oloop.codes import service
from o2oloop.codes.models import Code, CodeState, Redemption
from o2oloop.db import Database

SECRET = "crash-test-secret-" + "k" * 32
CODES = 160


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(url: str, port: int, data_dir: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "O2O_DATABASE_URL": url,
        "O2O_SECRET_KEY": SECRET,
        "O2O_DATA_DIR": str(data_dir),
        "O2O_ACCESS_LOG": "false",
        "O2O_TERMINAL_ATTEMPTS_PER_MINUTE": "1000000",
    }
    exe = Path(sys.executable).with_name("o2oloop")
    process = subprocess.Popen(
        [str(exe), "serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # Generous: a loaded machine (CI beside other work) imports the app slowly.
    deadline = time.monotonic() + 150
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            raise RuntimeError("server did not start")
        time.sleep(0.05)


def _kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _codes(db: Database, tenant, count: int) -> list[str]:
    offer_id = make_offer(db, tenant)
    keys = service.Keys.from_secret(SECRET)
    texts = []
    consumers = [make_consumer(db)[0] for _ in range(8)]
    with db.transaction() as session:
        for n in range(count):
            principal = consumer_principal(consumers[n % len(consumers)])
            code = service.claim(session, principal=principal, offer_id=offer_id, keys=keys)
            texts.append(keys.code_text(code.id))
    return texts


def _url(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=False)


def test_retries_after_sigkill_get_the_first_answer_or_a_first_execution(
    db: Database, tmp_path: Path
) -> None:
    tenant = make_tenant(db)
    claim_offer = make_offer(db, tenant)
    _, consumer_key = make_consumer(db)
    codes = _codes(db, tenant, CODES)
    url = _url(db)
    db.dispose()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    # key -> (method path, json body, headers); first answers seen before the crash
    requests: dict[str, tuple[str, dict | None, dict[str, str]]] = {}
    first: dict[str, tuple[int, bytes]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def till(lane: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            for n in range(lane, CODES, 4):
                if stop.is_set():
                    return
                key = f"till-{lane}-{n}"
                request = ("/v1/terminal/redemptions", {"code": codes[n], "bill_amount": 5000})
                headers = tenant.terminal | {"Idempotency-Key": key}
                with lock:
                    requests[key] = (*request, headers)
                try:
                    response = client.post(request[0], json=request[1], headers=headers)
                except httpx.HTTPError:
                    return  # the server died under this request
                with lock:
                    first[key] = (response.status_code, response.content)

    def app_user() -> None:  # claims run in an ORM transaction held open for the answer
        with httpx.Client(base_url=base, timeout=10) as client:
            for n in range(60):
                if stop.is_set():
                    return
                key = f"claim-{n}"
                headers = bearer(consumer_key) | {"Idempotency-Key": key}
                with lock:
                    requests[key] = (f"/v1/offers/{claim_offer}/claim", None, headers)
                try:
                    response = client.post(f"/v1/offers/{claim_offer}/claim", headers=headers)
                except httpx.HTTPError:
                    return
                with lock:
                    first[key] = (response.status_code, response.content)

    server = _start(url, port, tmp_path)
    threads = [threading.Thread(target=till, args=(lane,)) for lane in range(4)]
    threads.append(threading.Thread(target=app_user))
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(first) < CODES // 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        _kill(server)  # mid-load: requests are in flight on both workers
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
        in_flight = set(requests) - set(first)
        assert in_flight, "the kill should have caught requests in flight"
        assert all(status in (201,) for status, _ in first.values()), first

        server = _start(url, port, tmp_path)
        retried: dict[str, tuple[int, bytes]] = {}
        with httpx.Client(base_url=base, timeout=10) as client:
            for key, (path, body, headers) in requests.items():
                response = client.post(path, json=body, headers=headers)
                retried[key] = (response.status_code, response.content)
    finally:
        if server.poll() is None:
            _kill(server)

    assert {status for status, _ in retried.values()} == {201}
    for key, answer in first.items():
        assert retried[key] == answer, key  # the very answer the first attempt gave
    check = Database.from_url(url)
    try:
        with check.reading() as session:
            redemptions = session.scalar(select(func.count()).select_from(Redemption))
            redeemed = session.scalar(
                select(func.count()).select_from(Code).where(Code.state == CodeState.REDEEMED)
            )
            claimed = session.scalar(
                select(func.count()).select_from(Code).where(Code.offer_id == claim_offer)
            )
    finally:
        check.dispose()
    tills = [key for key in requests if key.startswith("till-")]
    claims = [key for key in requests if key.startswith("claim-")]
    assert redemptions == redeemed == len(tills)  # every attempted code taken, once
    assert claimed == len(claims)  # every claim made once, none twice
    redemption_ids = {
        httpx.Response(201, content=retried[k][1]).json()["redemption"]["id"] for k in tills
    }
    assert len(redemption_ids) == len(tills)


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

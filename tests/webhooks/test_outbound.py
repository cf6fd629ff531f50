"""One outbound request against a real receiver on loopback: every misbehaviour is a bounded,
recorded failure, and private addresses are refused unless the operator allows them."""

from __future__ import annotations

import time

import pytest

from o2oloop.webhooks.outbound import EXCERPT_BYTES, Sender, address_allowed
from webhook_receiver import Answer, receiving

HEADERS = {"content-type": "application/json", "webhook-id": "msg_1"}


@pytest.fixture
def sender():
    sender = Sender(timeout=1.0, allow_private=True)
    yield sender
    sender.close()


def test_a_2xx_answer_is_kept_with_status_latency_and_excerpt(sender: Sender) -> None:
    with receiving(lambda _r: Answer(204, b"")) as receiver:
        outcome = sender.post(receiver.url + "/hook", body='{"a":1}', headers=HEADERS)
        (got,) = receiver.wait_for(1)
    assert (outcome.status, outcome.error) == (204, None)
    assert got.path == "/hook" and got.body == b'{"a":1}' and got.headers["webhook-id"] == "msg_1"
    assert 0 <= outcome.latency_ms < 1000


def test_a_receiver_that_hangs_is_a_timeout_within_the_limit(sender: Sender) -> None:
    with receiving(lambda _r: Answer(hang=30)) as receiver:
        started = time.monotonic()
        outcome = sender.post(receiver.url, body="{}", headers=HEADERS)
    assert time.monotonic() - started < 2.5
    assert outcome.status is None and "no answer within 1 s" in (outcome.error or "")


def test_a_receiver_that_dribbles_its_headers_is_cut_off_at_the_deadline(sender: Sender) -> None:
    with receiving(lambda _r: Answer(dribble=0.2)) as receiver:
        started = time.monotonic()
        outcome = sender.post(receiver.url, body="{}", headers=HEADERS)
    # Every byte comes well within the per-read timeout; only the overall deadline stops it.
    assert time.monotonic() - started < 2.5
    assert outcome.status is None and outcome.error


def test_a_5xx_is_recorded_with_its_excerpt(sender: Sender) -> None:
    with receiving(lambda _r: Answer(503, b"down for maintenance", {"retry-after": "7"})) as r:
        outcome = sender.post(r.url, body="{}", headers=HEADERS)
    assert outcome.status == 503 and outcome.excerpt == "down for maintenance"
    assert outcome.retry_after == "7"


def test_a_redirect_is_a_failure_and_not_followed(sender: Sender) -> None:
    with (
        receiving() as target,
        receiving(lambda _r: Answer(302, b"", {"location": target.url + "/elsewhere"})) as receiver,
    ):
        outcome = sender.post(receiver.url, body="{}", headers=HEADERS)
        receiver.wait_for(1)
    assert outcome.status == 302 and "not followed" in (outcome.error or "")
    assert target.received == []


@pytest.mark.parametrize("chunked", [False, True])
def test_a_10_mb_body_is_read_only_up_to_a_bound(sender: Sender, chunked: bool) -> None:
    huge = 10 * 1024 * 1024
    answer = Answer(200, stream_bytes=huge) if chunked else Answer(200, b"y" * huge)
    with receiving(lambda _r: answer) as receiver:
        started = time.monotonic()
        outcome = sender.post(receiver.url, body="{}", headers=HEADERS)
    assert time.monotonic() - started < 1.5
    assert outcome.status == 200 and "longer than" in (outcome.error or "")
    assert 0 < len(outcome.excerpt.encode()) <= EXCERPT_BYTES


def test_a_refused_connection_is_a_recorded_error(sender: Sender) -> None:
    with receiving() as receiver:
        url = receiver.url
    outcome = sender.post(url, body="{}", headers=HEADERS)
    assert outcome.status is None and "ConnectError" in (outcome.error or "")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_loopback_is_refused_unless_the_operator_allows_it(host: str) -> None:
    guarded = Sender(timeout=1.0, allow_private=False)
    with receiving() as receiver:
        port = receiver.server.server_address[1]
        outcome = guarded.post(f"http://{host}:{port}/", body="{}", headers=HEADERS)
    guarded.close()
    assert outcome.status is None and "public addresses only" in (outcome.error or "")
    assert receiver.received == []


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_which_addresses_webhooks_may_reach(address: str, allowed: bool) -> None:
    # A classification only: no request is made to any of these.
    assert address_allowed(address) is allowed

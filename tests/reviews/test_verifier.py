"""The offline verifier against a real server: an honest log verifies; a changed, deleted or
reordered entry, a fork, another key's checkpoint and a tampered proof are each caught."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from sqlalchemy import delete, select, text, update
from typer.testing import CliRunner

from factories import bearer, make_tenant, platform_admin_key
from o2oloop.cli import app as cli_app
from o2oloop.db import Database
from o2oloop.reviews import log, merkle
from o2oloop.reviews.checkpoints import Signer
from o2oloop.reviews.models import LogCheckpoint, LogEntry, LogHead, LogNode
from o2oloop.reviews.verify import verify
from reviews import merkle_reference as ref
from reviews.conftest import make_visitor, pay


def _post(http, path: str, key: str, body: dict) -> object:
    headers = {**bearer(key), "Idempotency-Key": uuid.uuid4().hex}
    return http.post(path, json=body, headers=headers)


@pytest.fixture
def world(db: Database, http, settings):
    """Two reviews over HTTP (one replied to, one hidden by moderation) and a checkpoint."""
    tenant = make_tenant(db)
    admin = platform_admin_key(db)
    visitor = make_visitor(db, secret=settings.secret_key)
    review_ids = []
    for rating in (4, 2):
        visit_id = pay(db, tenant, visitor, secret=settings.secret_key)
        answer = _post(http, "/v1/reviews", visitor.key, {"visit_id": visit_id, "rating": rating})
        assert answer.status_code == 201, answer.text
        review_ids.append(answer.json()["id"])
    assert _post(http, f"/v1/reviews/{review_ids[0]}/reply", tenant.admin_key, {"text": "Thanks"})
    hidden = _post(
        http, f"/v1/reviews/{review_ids[1]}/moderation", admin, {"reason": "illegal_content"}
    )
    assert hidden.status_code == 201 and hidden.json()["hidden"]["reason"] == "illegal_content"
    _sign(db, settings)
    return {"tenant": tenant, "visitor": visitor, "reviews": review_ids}


def _sign(db: Database, settings) -> None:
    with db.transaction() as session:
        log.checkpoint(session, log=log.log_config(settings), force=True)


def _bodies(db: Database) -> list[bytes]:
    with db.reading() as session:
        return list(session.scalars(select(LogEntry.body).order_by(LogEntry.idx)))


def _rewrite(db: Database, settings, bodies: list[bytes]) -> None:
    """What a dishonest platform would do: rebuild the tree from other entries and sign it."""
    with db.transaction() as session:
        session.execute(delete(LogNode))
        session.execute(delete(LogEntry))
        session.execute(delete(LogHead))
        log.append(session, [json.loads(b) for b in bodies], log=None)
        log.checkpoint(session, log=log.log_config(settings), force=True)


def test_an_honest_log_verifies_and_keeps_verifying(db, server, http, settings, world, tmp_path):
    state = tmp_path / "state.json"
    report = verify(server.url, state_path=state, review_ids=world["reviews"])
    assert report.ok, report.errors
    assert report.checkpoint.size == 4 and report.checked_entries == 4
    first_root = report.checkpoint.root
    assert first_root == ref.mth(_bodies(db))  # the independent implementation agrees
    visit_id = pay(db, world["tenant"], world["visitor"], secret=settings.secret_key)
    _post(http, "/v1/reviews", world["visitor"].key, {"visit_id": visit_id, "rating": 5})
    _sign(db, settings)
    again = verify(server.url, state_path=state, review_ids=world["reviews"])
    assert again.ok, again.errors
    assert again.previous_size == 4 and again.checkpoint.size == 5


def test_the_cli_verifies_and_exits_non_zero_on_tampering(db, server, world, tmp_path) -> None:
    runner = CliRunner()
    state = str(tmp_path / "state.json")
    args = ["reviews", "verify", "--url", server.url, "--state", state]
    ok = runner.invoke(cli_app, [*args, "--review", world["reviews"][0]])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["tree_size"] == 4
    with db.transaction() as session:
        body = session.get(LogEntry, 0).body.replace(b'"rating":4', b'"rating":5')
        session.execute(update(LogEntry).where(LogEntry.idx == 0).values(body=body))
    bad = runner.invoke(cli_app, [*args, "--review", world["reviews"][0]])
    assert bad.exit_code == 1
    assert "entry 0 as served is not the entry at 0" in json.loads(bad.output)["errors"][0]


def test_a_changed_entry_is_caught(db, server, settings, world, tmp_path) -> None:
    with db.transaction() as session:
        body = session.get(LogEntry, 1).body.replace(b'"rating":2', b'"rating":5')
        session.execute(update(LogEntry).where(LogEntry.idx == 1).values(body=body))
    report = verify(server.url, review_ids=[world["reviews"][1]])
    assert not report.ok and "entry 1 as served" in report.errors[0]


def test_a_changed_entry_with_a_rebuilt_tree_is_rewritten_history(
    db, server, settings, world, tmp_path
) -> None:
    state = tmp_path / "state.json"
    assert verify(server.url, state_path=state).ok
    bodies = _bodies(db)
    bodies[1] = bodies[1].replace(b'"rating":2', b'"rating":5')
    _rewrite(db, settings, bodies)
    report = verify(server.url, state_path=state)
    assert not report.ok and "split view" in report.errors[0]


def test_a_deleted_entry_is_caught(db, server, http, settings, world, tmp_path) -> None:
    state = tmp_path / "state.json"
    assert verify(server.url, state_path=state).ok
    bodies = _bodies(db)
    del bodies[1]  # the bad review is gone...
    bodies += [bodies[0].replace(b'"version":1', b'"version":9'), bodies[0]]  # ...and padded
    _rewrite(db, settings, bodies)
    report = verify(server.url, state_path=state)
    assert not report.ok and "rewritten history" in report.errors[0]
    assert json.loads(state.read_text())["size"] == 4  # the state keeps the honest tree


def test_a_deleted_entry_that_shrinks_the_log_is_a_rollback(
    db, server, settings, world, tmp_path
) -> None:
    state = tmp_path / "state.json"
    assert verify(server.url, state_path=state).ok
    _rewrite(db, settings, _bodies(db)[:-1])
    report = verify(server.url, state_path=state)
    assert not report.ok and "rolled back" in report.errors[0]


def test_two_reordered_entries_are_caught(db, server, http, settings, world, tmp_path) -> None:
    state = tmp_path / "state.json"
    assert verify(server.url, state_path=state).ok
    bodies = _bodies(db)
    bodies[0], bodies[1] = bodies[1], bodies[0]
    _rewrite(db, settings, [*bodies, bodies[0]])
    report = verify(server.url, state_path=state)
    assert not report.ok and "rewritten history" in report.errors[0]


def test_a_fork_is_a_split_view(db, server, http, settings, world, tmp_path) -> None:
    """Two verifiers saw two different trees of one size: comparing states finds it."""
    honest, forked = tmp_path / "honest.json", tmp_path / "forked.json"
    assert verify(server.url, state_path=honest).ok
    bodies = _bodies(db)
    _rewrite(db, settings, [*bodies[:3], bodies[3].replace(b'"kind":"moderation"', b'"kind":"x"')])
    assert verify(server.url, state_path=forked).ok  # alone, a fork looks fine...
    forked.write_text(honest.read_text())  # ...but the first verifier's state refuses it
    report = verify(server.url, state_path=forked)
    assert not report.ok and "split view" in report.errors[0]


def test_a_checkpoint_signed_by_another_key_is_refused(db, server, settings, world) -> None:
    impostor = Signer.from_seed(settings.reviews_log_origin, bytes(32))
    with db.transaction() as session:
        row = log.latest_checkpoint(session)
        row.note = impostor.sign(row.note.split("\n\n")[0] + "\n")
    report = verify(server.url)
    assert not report.ok and "no signature by" in report.errors[0]
    pinned = verify(server.url, vkey=impostor.vkey)
    assert not pinned.ok and "another key" in pinned.errors[0]


def test_a_tampered_proof_is_caught(db, server, settings, world) -> None:
    with db.transaction() as session:
        session.execute(
            update(LogNode)
            .where(LogNode.level == 1, LogNode.idx == 1)
            .values(hash=merkle.leaf_hash(b"forged"))
        )
    report = verify(server.url, review_ids=[world["reviews"][0]])
    assert not report.ok and "not the entry at 0" in report.errors[0]


def test_sizes_that_do_not_exist_are_errors(db, server, http, settings, world, tmp_path):
    assert http.get("/v1/reviews/log/proofs/consistency?first=2&second=99").status_code == 404
    assert http.get("/v1/reviews/log/proofs/consistency?first=3&second=2").status_code == 404
    assert http.get("/v1/reviews/log/proofs/consistency?first=0&second=2").status_code == 422
    assert http.get("/v1/reviews/log/proofs/inclusion?index=4&size=4").status_code == 404
    state = tmp_path / "state.json"
    assert verify(server.url, state_path=state).ok
    saved = json.loads(state.read_text())
    saved["size"] = 2
    state.write_text(json.dumps(saved))
    report = verify(server.url, state_path=state)  # size 2 existed, with another root
    assert not report.ok and "rewritten history" in report.errors[0]


def test_public_reads_show_the_moderation_notice(db, http, world) -> None:
    hidden = http.get(f"/v1/reviews/{world['reviews'][1]}").json()
    assert hidden["text"] is None and hidden["hidden"]["notice"].startswith("hidden by moderation")
    entry = http.get(f"/v1/reviews/log/entries/{hidden['entries']['versions'][0]}").json()
    assert entry["content"] is None and entry["hidden"]["reason"] == "illegal_content"
    assert base64.b64decode(entry["leaf_hash"]) == merkle.leaf_hash(base64.b64decode(entry["body"]))
    shown = http.get(f"/v1/reviews/{world['reviews'][0]}").json()
    assert shown["reply"]["text"] == "Thanks" and shown["entries"]["reply"] == 2
    assert http.get("/v1/reviews/log/checkpoint").text.startswith("o2oloop.localhost/reviews\n4\n")
    with db.reading() as session:
        assert session.scalar(text("select count(*) from review_checkpoints")) == 1
    assert LogCheckpoint  # the table the checkpoint came from


def test_bad_input_over_http_is_a_clear_4xx_and_appends_nothing(db, http, settings, world) -> None:
    visitor, tenant = world["visitor"], world["tenant"]
    other = make_tenant(db)
    stranger = make_visitor(db, secret=settings.secret_key, name="Eve")
    visit_id = pay(db, tenant, visitor, secret=settings.secret_key)
    before = http.get("/v1/reviews/log/checkpoint").text
    with db.reading() as session:
        size = log.size(session)
    cases = [
        (visitor.key, {"visit_id": visit_id, "rating": 4, "text": "x" * 2001}, 422),
        (visitor.key, {"visit_id": visit_id, "rating": 6}, 422),
        (visitor.key, {"visit_id": visit_id, "rating": 4, "photos": ["aGVsbG8="]}, 422),
        (stranger.key, {"visit_id": visit_id, "rating": 1}, 404),
        (tenant.admin_key, {"visit_id": visit_id, "rating": 5}, 403),
        (visitor.key, {"rating": 5}, 422),
    ]
    for key, body, status in cases:
        answer = _post(http, "/v1/reviews", key, body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    replied = _post(
        http, f"/v1/reviews/{world['reviews'][1]}/reply", other.admin_key, {"text": "x"}
    )
    assert replied.status_code == 404
    again = _post(http, f"/v1/reviews/{world['reviews'][0]}/reply", tenant.admin_key, {"text": "y"})
    assert again.status_code == 409
    with db.reading() as session:
        assert log.size(session) == size
    assert http.get("/v1/reviews/log/checkpoint").text == before
    ratings = http.get("/v1/ratings", params={"merchant_id": tenant.merchant_id}).json()
    assert ratings["all"]["count"] == 2 and ratings["all"]["distribution"]["4"] == 1

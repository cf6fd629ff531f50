"""The offline verifier: given only the platform's public API, check that its review log
was never rewritten and that given reviews are in it as shown.

It checks the latest checkpoint's signature against the log's key (pinned on first use, or
given), its consistency with the checkpoint saved last time (a smaller tree: rolled back;
the same size with another root: a split view; a failed proof: rewritten history), and the
inclusion of every entry of each review given to it, with the content the entries commit
to. It needs no database and none of the platform's code but the pure proof functions.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from o2oloop.reviews import merkle
from o2oloop.reviews.checkpoints import Checkpoint, NoteError, Verifier, open_checkpoint


class VerificationError(Exception):
    """The log or a review does not check out; the message says how."""


@dataclass
class Report:
    checkpoint: Checkpoint | None = None
    previous_size: int | None = None
    checked_entries: int = 0
    pending: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "ok": self.ok,
            "tree_size": cp.size if cp else None,
            "root": base64.b64encode(cp.root).decode() if cp else None,
            "signed_at": cp.time.isoformat() if cp and cp.time else None,
            "previous_size": self.previous_size,
            "checked_entries": self.checked_entries,
            "not_yet_in_a_checkpoint": self.pending,
            "errors": self.errors,
        }


def _get(client: httpx.Client, path: str, **params: Any) -> httpx.Response:
    try:
        response = client.get(path, params=params or None)
    except httpx.HTTPError as error:
        raise VerificationError(f"cannot reach the platform: {error}") from error
    if response.status_code != 200:
        detail = response.text[:300]
        raise VerificationError(f"GET {path} answered {response.status_code}: {detail}")
    return response


def _b64list(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


def load_state(path: Path | None) -> dict[str, Any]:
    if path is None or not path.exists():
        return {}
    return json.loads(path.read_text())


def save_state(path: Path, verifier_key: str, checkpoint: Checkpoint, note: str) -> None:
    state = {
        "origin": checkpoint.origin,
        "vkey": verifier_key,
        "size": checkpoint.size,
        "root": base64.b64encode(checkpoint.root).decode(),
        "note": note,
    }
    path.write_text(json.dumps(state, indent=2) + "\n")


def _key(client: httpx.Client, state: dict[str, Any], given: str | None) -> str:
    published = _get(client, "/v1/reviews/log/key").json()["vkey"]
    pinned = given or state.get("vkey")
    if pinned is None:
        return published  # first use: pin what the platform publishes
    if state.get("vkey") and given and state["vkey"] != given:
        raise VerificationError("the key given differs from the key saved in the state file")
    if published != pinned:
        raise VerificationError("the platform now publishes another key than the one pinned")
    return pinned


def _check_history(client: httpx.Client, state: dict[str, Any], checkpoint: Checkpoint) -> None:
    old_size, old_root = state["size"], base64.b64decode(state["root"])
    if checkpoint.size < old_size:
        raise VerificationError(
            f"rolled back: the log had {old_size} entries and now signs {checkpoint.size}"
        )
    if checkpoint.size == old_size:
        if checkpoint.root != old_root:
            raise VerificationError(
                f"split view: two different roots signed for the tree of {old_size} entries"
            )
        return
    if old_size == 0:
        return
    proof = _get(
        client, "/v1/reviews/log/proofs/consistency", first=old_size, second=checkpoint.size
    ).json()["proof"]
    try:
        merkle.verify_consistency(
            old_size, checkpoint.size, old_root, checkpoint.root, _b64list(proof)
        )
    except merkle.ProofError as error:
        raise VerificationError(
            f"rewritten history: the tree of {checkpoint.size} entries does not extend the "
            f"saved tree of {old_size} ({error})"
        ) from error


def _check_entry(
    client: httpx.Client, checkpoint: Checkpoint, index: int, report: Report
) -> dict[str, Any]:
    """Entry `index` as served, proven to be in the checkpoint's tree; its parsed body."""
    served = _get(client, f"/v1/reviews/log/entries/{index}").json()
    body = base64.b64decode(served["body"])
    entry = json.loads(body)
    if index >= checkpoint.size:
        report.pending.append(index)
        return entry
    proof = _get(
        client, "/v1/reviews/log/proofs/inclusion", index=index, size=checkpoint.size
    ).json()["proof"]
    try:
        merkle.verify_inclusion(
            index, checkpoint.size, merkle.leaf_hash(body), _b64list(proof), checkpoint.root
        )
    except merkle.ProofError as error:
        raise VerificationError(
            f"entry {index} as served is not the entry at {index} in the signed log ({error})"
        ) from error
    if served.get("content") is not None:
        canonical = json.dumps(
            served["content"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
        digest = hashlib.sha256(bytes.fromhex(served["salt"]) + canonical).hexdigest()
        if digest != entry.get("content"):
            raise VerificationError(f"the content shown for entry {index} is not what it logged")
    report.checked_entries += 1
    return entry


def _check_review(
    client: httpx.Client, checkpoint: Checkpoint, review_id: str, report: Report
) -> None:
    review = _get(client, f"/v1/reviews/{review_id}").json()
    entries = review["entries"]
    latest: dict[str, Any] = {}
    for index in entries["versions"]:
        entry = _check_entry(client, checkpoint, index, report)
        if entry.get("kind") != "review" or entry.get("review") != review_id:
            raise VerificationError(f"entry {index} is not a version of review {review_id}")
        latest = entry
    if latest and latest.get("rating") != review["rating"]:
        raise VerificationError(
            f"review {review_id} is shown with {review['rating']} stars; its latest logged "
            f"version says {latest.get('rating')}"
        )
    if entries.get("reply") is not None:
        entry = _check_entry(client, checkpoint, entries["reply"], report)
        if entry.get("kind") != "reply" or entry.get("review") != review_id:
            raise VerificationError(f"entry {entries['reply']} is not the reply to {review_id}")
    for index in entries.get("moderation", []):
        entry = _check_entry(client, checkpoint, index, report)
        if entry.get("kind") != "moderation":
            raise VerificationError(f"entry {index} is not a moderation entry")


def verify(
    url: str,
    *,
    state_path: Path | None = None,
    vkey: str | None = None,
    review_ids: list[str] | None = None,
    timeout: float = 30.0,
) -> Report:
    """Check the log at `url`; with `state_path`, against (and then updating) the saved state."""
    report = Report()
    state = load_state(state_path)
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout) as client:
        try:
            key = _key(client, state, vkey)
            verifier = Verifier.from_vkey(key)
            note = _get(client, "/v1/reviews/log/checkpoint").text
            checkpoint = open_checkpoint(note, verifier, origin=state.get("origin"))
            report.checkpoint = checkpoint
            if state:
                report.previous_size = state["size"]
                _check_history(client, state, checkpoint)
            for review_id in review_ids or []:
                _check_review(client, checkpoint, review_id, report)
        except (VerificationError, NoteError) as error:
            report.errors.append(str(error))
            return report
    if state_path is not None:
        save_state(state_path, key, checkpoint, note)
    return report

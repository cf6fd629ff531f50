"""The review log as stored: appends that take turns on one head row, signed checkpoints,
and proofs read from the stored perfect subtrees (a few index reads at any size).

Appends lock the head row (FOR UPDATE on PostgreSQL; SQLite writers already take turns),
so leaf indices are dense and unique and each append extends exactly the tree before it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.config import Settings
from o2oloop.errors import NotFound
from o2oloop.prepared import dialect_insert
from o2oloop.reviews import merkle
from o2oloop.reviews.checkpoints import Checkpoint, Signer
from o2oloop.reviews.models import LogCheckpoint, LogEntry, LogHead, LogNode

HEAD = 1


@dataclass(frozen=True)
class LogConfig:
    """How the log signs: its key (whose name is the log's origin) and how often."""

    signer: Signer
    checkpoint_every: int = 64
    checkpoint_minutes: int = 10

    @property
    def origin(self) -> str:
        return self.signer.name


def signing_seed(settings: Settings) -> bytes:
    """The Ed25519 seed: O2O_REVIEWS_SIGNING_SEED, or derived from the platform secret."""
    if settings.reviews_signing_seed:
        seed = base64.b64decode(settings.reviews_signing_seed)
        if len(seed) != 32:
            raise ValueError("O2O_REVIEWS_SIGNING_SEED must be 32 bytes in base64")
        return seed
    return hashlib.sha256(
        b"o2oloop review log signing key\n" + settings.secret_key.encode()
    ).digest()


@lru_cache(maxsize=8)
def _config(origin: str, seed: bytes, every: int, minutes: int) -> LogConfig:
    return LogConfig(Signer.from_seed(origin, seed), every, minutes)


def log_config(settings: Settings) -> LogConfig:
    return _config(
        settings.reviews_log_origin,
        signing_seed(settings),
        settings.reviews_checkpoint_every_entries,
        settings.reviews_checkpoint_every_minutes,
    )


def canonical(entry: dict[str, Any]) -> bytes:
    """The bytes an entry is hashed as: JSON, keys sorted, no spaces, UTF-8, no floats."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _head(session: Session, *, lock: bool) -> LogHead:
    if lock:
        session.execute(
            dialect_insert(session.get_bind().dialect.name)(LogHead)
            .values(
                id=HEAD,
                size=0,
                peaks=b"",
                root=merkle.EMPTY_ROOT,
                signed_size=0,
                updated_at=clock.now(),
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        head = session.scalar(
            select(LogHead)
            .where(LogHead.id == HEAD)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    else:
        head = session.get(LogHead, HEAD)
    if head is None:
        return LogHead(id=HEAD, size=0, peaks=b"", root=merkle.EMPTY_ROOT, signed_size=0)
    return head


def size(session: Session) -> int:
    return _head(session, lock=False).size


def append(
    session: Session, entries: Sequence[dict[str, Any]], *, log: LogConfig | None
) -> list[int]:
    """Append entries in order and return their leaf indices; signs a checkpoint once the
    tree has grown `checkpoint_every` entries past the last one (without `log`, as in an
    erasure, the next append or the periodic checkpoint signs it)."""
    head = _head(session, lock=True)
    start, peaks = head.size, _split_peaks(head.peaks)
    now = clock.now()
    entry_rows, node_rows = [], []
    for offset, entry in enumerate(entries):
        body = canonical(entry)
        peaks, completed = merkle.append(peaks, start + offset, merkle.leaf_hash(body))
        entry_rows.append({"idx": start + offset, "body": body, "created_at": now})
        node_rows.extend({"level": lv, "idx": ix, "hash": h} for lv, ix, h in completed)
    if entry_rows:
        # Core inserts (one executemany each): rows the ORM never needs to track.
        connection = session.connection()
        connection.execute(insert(LogEntry.__table__), entry_rows)
        connection.execute(insert(LogNode.__table__), node_rows)
    head.size = start + len(entry_rows)
    head.peaks = b"".join(peaks)
    head.root = merkle.fold(peaks)
    head.updated_at = now
    session.flush()
    if log is not None and head.size - head.signed_size >= log.checkpoint_every:
        _sign(session, head, log)
    return list(range(start, head.size))


def _split_peaks(blob: bytes) -> list[bytes]:
    return [blob[i : i + merkle.HASH_SIZE] for i in range(0, len(blob), merkle.HASH_SIZE)]


def _sign(session: Session, head: LogHead, log: LogConfig) -> LogCheckpoint:
    now = clock.now()
    note = log.signer.sign(Checkpoint(log.origin, head.size, head.root, now).text())
    row = LogCheckpoint(size=head.size, root=head.root, note=note, signed_at=now)
    head.signed_size = head.size
    session.add(row)
    session.flush()
    return row


def checkpoint(session: Session, *, log: LogConfig, force: bool = False) -> LogCheckpoint | None:
    """Sign the current tree if the last checkpoint is older than `checkpoint_minutes` or
    of a smaller tree (or always, with `force`); None when nothing was due."""
    head = _head(session, lock=True)
    latest = latest_checkpoint(session)
    due = (
        force
        or latest is None
        or latest.size != head.size
        or latest.signed_at <= clock.now() - timedelta(minutes=log.checkpoint_minutes)
    )
    return _sign(session, head, log) if due else None


def latest_checkpoint(session: Session) -> LogCheckpoint | None:
    return session.scalar(select(LogCheckpoint).order_by(LogCheckpoint.id.desc()).limit(1))


def entry(session: Session, index: int) -> LogEntry:
    row = session.get(LogEntry, index)
    if row is None:
        raise NotFound("no log entry with this index")
    return row


def _nodes(session: Session, wanted: set[merkle.Node]) -> dict[merkle.Node, bytes]:
    if not wanted:
        return {}
    by_level: dict[int, list[int]] = {}
    for level, index in wanted:
        by_level.setdefault(level, []).append(index)
    clauses = [
        and_(LogNode.level == level, LogNode.idx.in_(indices))
        for level, indices in by_level.items()
    ]
    rows = session.execute(select(LogNode.level, LogNode.idx, LogNode.hash).where(or_(*clauses)))
    found = {(level, index): value for level, index, value in rows}
    if len(found) != len(wanted):
        raise RuntimeError("the review log is missing stored subtrees")
    return found


def _check_size(session: Session, tree_size: int) -> None:
    """A tree the log has not reached is not there yet: 404, as any resource not there."""
    current = size(session)
    if tree_size > current:
        raise NotFound(
            f"the log has {current} entries; no tree of size {tree_size} exists yet",
            field="size",
            tree_size=current,
        )


def inclusion_proof(session: Session, *, index: int, tree_size: int) -> list[bytes]:
    _check_size(session, tree_size)
    if not 0 <= index < tree_size:
        raise NotFound(f"entry {index} is not in a tree of {tree_size}", field="index")
    ranges = merkle.inclusion_ranges(index, tree_size)
    return merkle.hashes_of(ranges, _nodes(session, merkle.nodes_for(ranges)))


def consistency_proof(session: Session, *, first: int, second: int) -> list[bytes]:
    _check_size(session, second)
    if not 1 <= first <= second:
        raise NotFound(
            f"a tree of {second} entries holds no tree of {first}: 1 <= first <= second",
            field="first",
        )
    ranges = merkle.consistency_ranges(first, second)
    return merkle.hashes_of(ranges, _nodes(session, merkle.nodes_for(ranges)))


def root_at(session: Session, tree_size: int) -> bytes:
    """The root hash of the tree's first `tree_size` entries."""
    _check_size(session, tree_size)
    nodes = merkle.perfect_nodes(0, tree_size)
    found = _nodes(session, set(nodes))
    return merkle.fold([found[node] for node in nodes])


def lock(session: Session) -> LogHead:
    """Take the log's turn now: appends, and checks that must hold with them, serialise."""
    return _head(session, lock=True)

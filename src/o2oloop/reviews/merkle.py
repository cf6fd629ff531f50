"""RFC 9162 Merkle trees as pure functions: hashing, which subtrees a proof needs, checks.

The log stores every perfect subtree's hash (a node `(level, index)` covers leaves
`index * 2**level` up to `(index + 1) * 2**level`), so any proof is a handful of those
nodes: `inclusion_ranges` / `consistency_ranges` name the leaf ranges a proof consists of,
`perfect_nodes` breaks a range into stored nodes and `fold` hashes them back together.
Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 to the letter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]  # (level, index): a perfect subtree of 2**level leaves
Range = tuple[int, int]  # leaves [start, end)


class ProofError(ValueError):
    """A proof that does not prove what it claims."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): where RFC 9162 splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees D[start:end] is made of as RFC 9162 splits it, left to right.

    Every range a proof names starts on a multiple of its largest piece, so the pieces are
    the binary digits of its length, largest first, each aligned: a stored node.
    """
    nodes = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start % (1 << level):
            raise ValueError(f"range [{start}, {end}) is not aligned to whole subtrees")
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from the hashes of its perfect pieces (left to right)."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for piece in reversed(hashes[:-1]):
        result = node_hash(piece, result)
    return result


def append(
    peaks: Sequence[bytes], size: int, leaf: bytes
) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Add a leaf hash to a tree given by its peaks (the hashes of `perfect_nodes(0, size)`).

    Returns the new peaks and the nodes this leaf completes as (level, index, hash), the
    leaf itself first: exactly what to store so that every perfect subtree is stored.
    """
    peaks = list(peaks)
    current, level, index = leaf, 0, size
    completed = [(0, size, leaf)]
    while index & 1:
        current = node_hash(peaks.pop(), current)
        level, index = level + 1, index >> 1
        completed.append((level, index, current))
    peaks.append(current)
    return peaks, completed


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose hashes form PATH(index, D[size]), in proof order (RFC 9162 2.1.3.1)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    ranges = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]


def consistency_ranges(old: int, new: int) -> list[Range]:
    """The ranges whose hashes form PROOF(old, D[new]), in proof order (RFC 9162 2.1.4.1)."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    if old in (0, new):
        return []
    ranges = []
    start, end, m, whole = 0, new, old, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        ranges.append((start, end))
    return ranges[::-1]


def _check_hashes(*hashes: bytes) -> None:
    for value in hashes:
        if len(value) != HASH_SIZE:
            raise ProofError(f"a hash of {len(value)} bytes, not {HASH_SIZE}")


def _shift_until_set(fn: int, sn: int) -> tuple[int, int]:
    while not fn & 1 and fn != 0:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofError unless `proof` shows the leaf hash at `index` in the tree `root`."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    _check_hashes(leaf, *proof)
    if len(proof) != len(inclusion_ranges(index, size)):
        raise ProofError("the inclusion proof has the wrong length")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                fn, sn = _shift_until_set(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != root:
        raise ProofError("the inclusion proof does not lead to the root")


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ProofError unless `proof` shows the tree `old_root` is a prefix of `new_root`."""
    if old < 1 or new < old:
        raise ProofError(f"no consistency proof from size {old} to size {new}")
    _check_hashes(*proof)
    if old == new:
        if proof:
            raise ProofError("trees of one size need an empty consistency proof")
        if old_root != new_root:
            raise ProofError("two different roots for one tree size")
        return
    if len(proof) != len(consistency_ranges(old, new)):
        raise ProofError("the consistency proof has the wrong length")
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                fn, sn = _shift_until_set(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise ProofError("the consistency proof does not lead to both roots")


def nodes_for(ranges: Sequence[Range]) -> set[Node]:
    """Every stored node a proof of these ranges reads."""
    return {node for start, end in ranges for node in perfect_nodes(start, end)}


def hashes_of(ranges: Sequence[Range], nodes: dict[Node, bytes]) -> list[bytes]:
    """The proof: each range's hash, folded from the stored nodes it is made of."""
    return [fold([nodes[node] for node in perfect_nodes(start, end)]) for start, end in ranges]

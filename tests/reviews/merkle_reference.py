"""A second, independent RFC 9162 implementation: recursive, straight from the definitions.

It shares no code with `o2oloop.reviews.merkle`: proofs the log serves are checked by both.
"""

from __future__ import annotations

import hashlib


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) of the entries themselves."""
    if not leaves:
        return _h(b"")
    if len(leaves) == 1:
        return _h(b"\x00" + leaves[0])
    k = _k(len(leaves))
    return _h(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _k(len(leaves))
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def consistency(m: int, leaves: list[bytes]) -> list[bytes]:
    return subproof(m, leaves, True)


def root_from_path(m: int, n: int, leaf_hash: bytes, proof: list[bytes]) -> bytes:
    """The root an inclusion proof leads to; raises ValueError if its shape is wrong."""
    rest = list(proof)

    def walk(m: int, n: int) -> bytes:
        if n == 1:
            return leaf_hash
        k = _k(n)
        if not rest:
            raise ValueError("proof too short")
        sibling = rest.pop()
        if m < k:
            return _h(b"\x01" + walk(m, k) + sibling)
        return _h(b"\x01" + sibling + walk(m - k, n - k))

    if not 0 <= m < n:
        raise ValueError("index outside the tree")
    root = walk(m, n)
    if rest:
        raise ValueError("proof too long")
    return root


def roots_from_consistency(m: int, n: int, old_root: bytes, proof: list[bytes]) -> bytes:
    """The new root a consistency proof leads to, after checking it leads to old_root."""
    rest = list(proof)

    def walk(m: int, n: int, whole: bool) -> tuple[bytes, bytes]:
        if m == n:
            if whole:
                return old_root, old_root
            if not rest:
                raise ValueError("proof too short")
            h = rest.pop()
            return h, h
        if not rest:
            raise ValueError("proof too short")
        k = _k(n)
        if m <= k:
            right = rest.pop()
            old, new = walk(m, k, whole)
            return old, _h(b"\x01" + new + right)
        left = rest.pop()
        old, new = walk(m - k, n - k, False)
        return _h(b"\x01" + left + old), _h(b"\x01" + left + new)

    if not 0 < m <= n:
        raise ValueError("no proof between these sizes")
    old, new = walk(m, n, True)
    if rest or old != old_root:
        raise ValueError("proof does not lead to the old root")
    return new

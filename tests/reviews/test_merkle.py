"""The log's Merkle code against RFC 9162's definitions, a second implementation and the
transparency-dev test vectors."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2oloop.reviews import merkle
from reviews import merkle_reference as ref

VECTORS = Path(__file__).parent / "vectors"
MAX = 64


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(values: list[str] | None) -> list[bytes]:
    return [_b64(v) for v in values or []]


def _probes(kind: str) -> list[tuple[str, dict]]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    return [(str(f.relative_to(VECTORS)), json.loads(f.read_text())) for f in files]


class StoredTree:
    """The tree as the log keeps it: peaks while appending, every perfect subtree stored."""

    def __init__(self) -> None:
        self.peaks: list[bytes] = []
        self.nodes: dict[merkle.Node, bytes] = {}
        self.size = 0

    def add(self, entry: bytes) -> None:
        self.peaks, completed = merkle.append(self.peaks, self.size, merkle.leaf_hash(entry))
        for level, index, value in completed:
            self.nodes[(level, index)] = value
        self.size += 1

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return merkle.fold([self.nodes[n] for n in merkle.perfect_nodes(0, size)])

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return merkle.hashes_of(merkle.inclusion_ranges(index, size), self.nodes)

    def consistency(self, old: int, new: int) -> list[bytes]:
        return merkle.hashes_of(merkle.consistency_ranges(old, new), self.nodes)


def _entries(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


@pytest.fixture(scope="module")
def tree() -> StoredTree:
    tree = StoredTree()
    for entry in _entries(MAX):
        tree.add(entry)
    return tree


# The RFC 6962 test tree of transparency-dev/merkle (testonly/constants.go at commit
# 417fb0c314750d94e53942e9f92e79b6d35915db): eight leaf inputs and the root of each size.
RFC_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
RFC_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_hashing_is_rfc_9162s() -> None:
    assert merkle.leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert (
        merkle.node_hash(b"l" * 32, b"r" * 32)
        == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()
    )
    assert hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT


def test_roots_of_the_rfc_test_tree() -> None:
    tree = StoredTree()
    assert tree.root() == bytes.fromhex(RFC_ROOTS[0])
    for size, entry in enumerate(RFC_LEAVES, start=1):
        tree.add(entry)
        assert tree.root().hex() == RFC_ROOTS[size]
        assert ref.mth(RFC_LEAVES[:size]).hex() == RFC_ROOTS[size]


def test_roots_match_the_definition_for_every_size(tree: StoredTree) -> None:
    entries = _entries(MAX)
    for size in range(MAX + 1):
        assert tree.root(size) == ref.mth(entries[:size])


def test_inclusion_for_every_leaf_of_every_size_up_to_64(tree: StoredTree) -> None:
    entries = _entries(MAX)
    for size in range(1, MAX + 1):
        root = tree.root(size)
        for index in range(size):
            proof = tree.inclusion(index, size)
            assert proof == ref.path(index, entries[:size])
            leaf = merkle.leaf_hash(entries[index])
            merkle.verify_inclusion(index, size, leaf, proof, root)
            assert ref.root_from_path(index, size, leaf, proof) == root


def test_consistency_for_every_pair_of_sizes_up_to_64(tree: StoredTree) -> None:
    entries = _entries(MAX)
    for new in range(1, MAX + 1):
        new_root = tree.root(new)
        for old in range(1, new + 1):
            proof = tree.consistency(old, new)
            assert proof == ref.consistency(old, entries[:new])
            old_root = tree.root(old)
            merkle.verify_consistency(old, new, old_root, new_root, proof)
            assert ref.roots_from_consistency(old, new, old_root, proof) == new_root


def test_a_proof_against_another_tree_fails_in_both(tree: StoredTree) -> None:
    for new in range(2, 20):
        for old in range(1, new):
            proof = tree.consistency(old, new)
            wrong = tree.root(new - 1)
            with pytest.raises(merkle.ProofError):
                merkle.verify_consistency(old, new, tree.root(old), wrong, proof)
            assert ref.roots_from_consistency(old, new, tree.root(old), proof) != wrong


@given(
    size=st.integers(2, MAX),
    data=st.data(),
)
def test_any_flipped_bit_breaks_an_inclusion_proof(tree: StoredTree, size: int, data) -> None:
    index = data.draw(st.integers(0, size - 1))
    proof = tree.inclusion(index, size)
    which = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    tampered = list(proof)
    element = bytearray(tampered[which])
    element[bit // 8] ^= 1 << (bit % 8)
    tampered[which] = bytes(element)
    leaf = tree.nodes[(0, index)]
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(index, size, leaf, tampered, tree.root(size))
    assert ref.root_from_path(index, size, leaf, tampered) != tree.root(size)


@given(old=st.integers(1, MAX - 1), grow=st.integers(1, MAX), data=st.data())
def test_any_flipped_bit_breaks_a_consistency_proof(tree: StoredTree, old, grow, data) -> None:
    new = min(MAX, old + grow)
    proof = tree.consistency(old, new)
    which = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    tampered = list(proof)
    element = bytearray(tampered[which])
    element[bit // 8] ^= 1 << (bit % 8)
    tampered[which] = bytes(element)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(old, new, tree.root(old), tree.root(new), tampered)


def test_sizes_that_do_not_exist_have_no_proof() -> None:
    with pytest.raises(ValueError):
        merkle.inclusion_ranges(5, 5)
    with pytest.raises(ValueError):
        merkle.consistency_ranges(6, 5)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(0, 3, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])


@pytest.mark.parametrize(("name", "probe"), _probes("inclusion"), ids=lambda v: str(v)[:60])
def test_transparency_dev_inclusion_vectors(name: str, probe: dict) -> None:
    args = (
        probe["leafIdx"],
        probe["treeSize"],
        _b64(probe["leafHash"]),
        _proof(probe["proof"]),
        _b64(probe["root"]),
    )
    if probe["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize(("name", "probe"), _probes("consistency"), ids=lambda v: str(v)[:60])
def test_transparency_dev_consistency_vectors(name: str, probe: dict) -> None:
    args = (
        probe["size1"],
        probe["size2"],
        _b64(probe["root1"]),
        _b64(probe["root2"]),
        _proof(probe["proof"]),
    )
    if probe["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_happy_vectors_are_what_the_log_would_serve() -> None:
    """The vectors' valid proofs are the ones our own tree builds for the RFC leaves."""
    tree = StoredTree()
    for entry in RFC_LEAVES:
        tree.add(entry)
    for _name, probe in _probes("inclusion"):
        if not probe["wantErr"] and probe["treeSize"] <= 8 and probe["proof"]:
            assert tree.inclusion(probe["leafIdx"], probe["treeSize"]) == _proof(probe["proof"])
    for name, probe in _probes("consistency"):
        if not probe["wantErr"] and 0 < probe["size1"] < probe["size2"] <= 8:
            got = tree.consistency(probe["size1"], probe["size2"])
            assert got == _proof(probe["proof"]), name

"""Signed notes and checkpoints in the C2SP formats, against the specification's example."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from o2oloop.reviews import merkle
from o2oloop.reviews.checkpoints import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    open_checkpoint,
    open_note,
    parse_checkpoint,
)

# The example of c2sp.org/signed-note (signed-note.md in C2SP/C2SP).
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3"
    "mFXmRKuwHjG1Yu72IneyaQM=\n"
)
SIGNER = Signer.from_seed("o2oloop.test/reviews", bytes(range(32)))
OTHER = Signer.from_seed("o2oloop.test/reviews", bytes(range(1, 33)))


def test_the_specifications_example_note_verifies() -> None:
    assert open_note(SPEC_NOTE, Verifier.from_vkey(SPEC_VKEY)) == "This is an example message.\n"


def test_a_changed_text_fails_the_specifications_key() -> None:
    with pytest.raises(NoteError):
        open_note(SPEC_NOTE.replace("example", "exemplary", 1), Verifier.from_vkey(SPEC_VKEY))


def test_signed_checkpoint_round_trip() -> None:
    checkpoint = Checkpoint(
        "o2oloop.test/reviews", 20852163, merkle.EMPTY_ROOT, datetime(2026, 6, 1, 12, tzinfo=UTC)
    )
    note = SIGNER.sign(checkpoint.text())
    lines = note.splitlines()
    assert lines[:4] == [
        "o2oloop.test/reviews",
        "20852163",
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        "time 2026-06-01T12:00:00Z",
    ]
    assert lines[4] == "" and lines[5].startswith("\u2014 o2oloop.test/reviews ")
    assert open_checkpoint(note, Verifier.from_vkey(SIGNER.vkey)) == checkpoint


def test_another_key_with_the_same_name_is_refused() -> None:
    note = OTHER.sign(Checkpoint("o2oloop.test/reviews", 1, merkle.EMPTY_ROOT).text())
    with pytest.raises(NoteError, match="no signature"):
        open_checkpoint(note, Verifier.from_vkey(SIGNER.vkey))


def test_a_forged_signature_under_the_right_key_id_is_refused() -> None:
    good = SIGNER.sign(Checkpoint("o2oloop.test/reviews", 5, merkle.EMPTY_ROOT).text())
    forged = good.replace("\n5\n", "\n6\n")
    with pytest.raises(NoteError, match="does not verify"):
        open_checkpoint(forged, Verifier.from_vkey(SIGNER.vkey))


def test_unknown_signatures_are_ignored() -> None:
    text = Checkpoint("o2oloop.test/reviews", 3, merkle.EMPTY_ROOT).text()
    witness = Signer.from_seed("witness.example/w1", bytes(32))
    both = SIGNER.sign(text) + witness.sign(text).split("\n\n", 1)[1]
    assert open_checkpoint(both, Verifier.from_vkey(SIGNER.vkey)).size == 3


@pytest.mark.parametrize(
    "text",
    [
        "origin\n3\n",
        "origin\n03\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "origin\n3\nnot base64!\n",
        "origin\n3\nAAAA\n",
        "origin\n3\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\ntime yesterday\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(text)


def test_a_checkpoint_of_another_log_is_refused() -> None:
    note = SIGNER.sign(Checkpoint("elsewhere.example/log", 1, merkle.EMPTY_ROOT).text())
    with pytest.raises(NoteError, match="of log"):
        open_checkpoint(note, Verifier.from_vkey(SIGNER.vkey))


def test_bad_verifier_keys_are_refused() -> None:
    for vkey in ("nope", "a+zz+AAAA", SIGNER.vkey.replace("+", "+0", 1)):
        with pytest.raises(NoteError):
            Verifier.from_vkey(vkey)

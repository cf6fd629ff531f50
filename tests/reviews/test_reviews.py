"""Posting, editing, replying and moderating: rules, refusals that append nothing, and the
log entries each change leaves."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from factories import PLATFORM, Tenant, consumer_principal, make_tenant
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.db import Database
from o2oloop.errors import Conflict, Forbidden, InvalidInput, NotFound
from o2oloop.reviews import log, merkle, moderation, replies, service, views
from o2oloop.reviews.log import LogConfig
from o2oloop.reviews.models import LogCheckpoint, Review
from o2oloop.reviews.schemas import HideCreate, ReplyCreate, ReviewCreate, ReviewUpdate
from reviews.conftest import make_visitor, pay, redeem


def _size(db: Database) -> int:
    with db.reading() as session:
        return log.size(session)


def _post(db: Database, visitor, log_config: LogConfig, **fields) -> Review:
    with db.transaction() as session:
        review = service.post_review(
            session,
            principal=consumer_principal(visitor.consumer_id),
            data=ReviewCreate(**fields),
            log_config=log_config,
        )
        session.expunge(review)
        return review


def _admin(tenant: Tenant) -> Principal:
    return Principal(
        key_id=tenant.admin_key_id, role=Role.MERCHANT_ADMIN, merchant_id=tenant.merchant_id
    )


def _entry(db: Database, index: int) -> dict:
    with db.reading() as session:
        return json.loads(log.entry(session, index).body)


def _photo(fmt: str = "JPEG", exif: bool = False) -> str:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    out = io.BytesIO()
    kwargs = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = "SpyCam"  # Make
        data[0x8825] = {1: "N", 2: (31.0, 14.0, 0.0)}  # GPS latitude
        kwargs["exif"] = data
    image.save(out, format=fmt, **kwargs)
    return base64.b64encode(out.getvalue()).decode()


def test_a_consumer_reviews_their_verified_visit(db, tenant, log_config, frozen_clock) -> None:
    visitor = make_visitor(db)
    visit_id = pay(db, tenant, visitor)
    review = _post(db, visitor, log_config, visit_id=visit_id, rating=4, text="Good noodles")
    assert review.first_entry == 0 and review.rating == 4 and not review.code_used
    entry = _entry(db, 0)
    assert entry["kind"] == "review" and entry["rating"] == 4 and entry["visit"]["source"] == "pos"
    assert "Good noodles" not in json.dumps(entry)  # the text is committed to, not logged
    with db.reading() as session:
        shown = views.entry_read(session, 0)
        read = views.review_read(session, session.get(Review, review.id))
    salt = bytes.fromhex(shown.salt)
    assert hashlib.sha256(salt + log.canonical(shown.content)).hexdigest() == entry["content"]
    assert read.text == "Good noodles" and read.author == "Ada" and read.entries.versions == [0]


def test_a_redemption_is_a_verified_visit_marked_as_using_a_code(
    db, tenant, log_config, frozen_clock
) -> None:
    visitor = make_visitor(db)
    redemption_id = redeem(db, tenant, visitor)
    review = _post(db, visitor, log_config, redemption_id=redemption_id, rating=5)
    assert review.code_used and not review.campaign_code
    assert review.visit_source == "redemption" and _entry(db, 0)["visit"]["code"] is True
    # The payment reported with that redemption is the same visit: no second review.
    visit_id = pay(db, tenant, visitor, redemption_id=redemption_id)
    with pytest.raises(Conflict):
        _post(db, visitor, log_config, visit_id=visit_id, rating=1)
    assert _size(db) == 1


def test_refusals_append_nothing(db, tenant, log_config, frozen_clock) -> None:
    visitor, stranger = make_visitor(db), make_visitor(db, name="Eve")
    visit_id = pay(db, tenant, visitor)
    with pytest.raises(NotFound):
        _post(db, stranger, log_config, visit_id=visit_id, rating=1)
    with pytest.raises(NotFound):
        _post(db, stranger, log_config, redemption_id="red_nope", rating=1)
    with pytest.raises(InvalidInput, match="readable image"):
        _post(db, visitor, log_config, visit_id=visit_id, rating=3, photos=["bm90IGFuIGltYWdl"])
    with pytest.raises(InvalidInput, match="base64"):
        _post(db, visitor, log_config, visit_id=visit_id, rating=3, photos=["%%%"])
    assert _size(db) == 0
    _post(db, visitor, log_config, visit_id=visit_id, rating=3)
    with pytest.raises(Conflict, match="already has a review"):
        _post(db, visitor, log_config, visit_id=visit_id, rating=5)
    assert _size(db) == 1


def test_a_visit_older_than_the_window_cannot_be_reviewed(
    db, tenant, log_config, frozen_clock
) -> None:
    visitor = make_visitor(db)
    visit_id = pay(db, tenant, visitor)
    frozen_clock.advance(timedelta(days=30, minutes=1))
    with pytest.raises(InvalidInput, match="30 days"):
        _post(db, visitor, log_config, visit_id=visit_id, rating=2)
    assert _size(db) == 0


def test_merchant_staff_and_terminal_keys_cannot_review(db, tenant, log_config) -> None:
    visitor = make_visitor(db)
    visit_id = pay(db, tenant, visitor)
    staff = Principal(
        key_id="k", role=Role.MERCHANT_STAFF, merchant_id=tenant.merchant_id, staff_id="s"
    )
    for principal in (staff, _admin(tenant), PLATFORM):
        with db.transaction() as session, pytest.raises(Forbidden):
            service.post_review(
                session,
                principal=principal,
                data=ReviewCreate(visit_id=visit_id, rating=5),
                log_config=log_config,
            )
    assert _size(db) == 0


def test_photos_are_checked_and_stripped_of_metadata(db, tenant, log_config) -> None:
    visitor = make_visitor(db)
    visit_id = pay(db, tenant, visitor)
    review = _post(db, visitor, log_config, visit_id=visit_id, rating=5, photos=[_photo(exif=True)])
    with db.reading() as session:
        read = views.review_read(session, session.get(Review, review.id))
        data = views.photo(session, read.photos[0].id).data
    stored = Image.open(io.BytesIO(data))
    assert stored.format == "JPEG" and stored.size == (64, 48)
    assert len(stored.getexif()) == 0 and b"SpyCam" not in data
    assert hashlib.sha256(data).hexdigest() == read.photos[0].sha256
    too_big = base64.b64encode(b"\xff\xd8" + b"\0" * (5 * 1024 * 1024)).decode()
    other_visit = pay(db, tenant, visitor)
    with pytest.raises(InvalidInput, match="at most 5 MB"):
        _post(db, visitor, log_config, visit_id=other_visit, rating=5, photos=[too_big])


def test_edits_append_versions_and_keep_the_old(db, tenant, log_config) -> None:
    visitor = make_visitor(db)
    review = _post(db, visitor, log_config, visit_id=pay(db, tenant, visitor), rating=2)
    with db.transaction() as session:
        service.edit_review(
            session,
            principal=consumer_principal(visitor.consumer_id),
            review_id=review.id,
            data=ReviewUpdate(rating=4, text="They fixed it"),
            log_config=log_config,
        )
    second = _entry(db, 1)
    assert second["version"] == 2 and second["supersedes"] == 0 and second["rating"] == 4
    assert _entry(db, 0)["rating"] == 2
    with db.reading() as session:
        read = views.review_read(session, session.get(Review, review.id))
    assert read.rating == 4 and read.version == 2 and read.entries.versions == [0, 1]
    stranger = make_visitor(db)
    with db.transaction() as session, pytest.raises(NotFound):
        service.edit_review(
            session,
            principal=consumer_principal(stranger.consumer_id),
            review_id=review.id,
            data=ReviewUpdate(rating=1),
            log_config=log_config,
        )


def test_the_merchant_replies_once_and_no_other_merchant_can(db, tenant, log_config) -> None:
    visitor = make_visitor(db)
    review = _post(db, visitor, log_config, visit_id=pay(db, tenant, visitor), rating=3)
    other = make_tenant(db)
    with db.transaction() as session, pytest.raises(NotFound):
        replies.reply(
            session,
            principal=_admin(other),
            review_id=review.id,
            data=ReplyCreate(text="Come to us instead"),
            log_config=log_config,
        )
    with db.transaction() as session:
        replies.reply(
            session,
            principal=_admin(tenant),
            review_id=review.id,
            data=ReplyCreate(text="Thank you!"),
            log_config=log_config,
        )
    assert _entry(db, 1)["kind"] == "reply"
    with db.transaction() as session, pytest.raises(Conflict):
        replies.reply(
            session,
            principal=_admin(tenant),
            review_id=review.id,
            data=ReplyCreate(text="Again"),
            log_config=log_config,
        )
    assert _size(db) == 2


def test_moderation_hides_content_but_not_the_entry(db, tenant, log_config) -> None:
    visitor = make_visitor(db)
    review = _post(
        db, visitor, log_config, visit_id=pay(db, tenant, visitor), rating=1, text="call 139..."
    )
    with db.reading() as session:
        before = views.entry_read(session, 0)
    with db.transaction() as session:
        moderation.hide(
            session,
            principal=PLATFORM,
            review_id=review.id,
            data=HideCreate(reason="personal_data"),
            log_config=log_config,
        )
        with pytest.raises(Conflict):
            moderation.hide(
                session,
                principal=PLATFORM,
                review_id=review.id,
                data=HideCreate(reason="personal_data"),
                log_config=log_config,
            )
    with db.transaction() as session, pytest.raises(Forbidden):
        moderation.hide(
            session,
            principal=_admin(tenant),
            review_id=review.id,
            data=HideCreate(reason="illegal_content"),
            log_config=log_config,
        )
    hide_entry = _entry(db, 1)
    assert hide_entry == {
        "v": 1,
        "kind": "moderation",
        "action": "hide",
        "entries": [0],
        "reason": "personal_data",
        "by": "platform_moderator",
        "at": hide_entry["at"],
    }
    with db.reading() as session:
        after = views.entry_read(session, 0)
        read = views.review_read(session, session.get(Review, review.id))
        root = log.root_at(session, 2)
        proof = log.inclusion_proof(session, index=0, tree_size=2)
    assert after.body == before.body and after.content is None and after.salt is None
    assert after.hidden.notice == "hidden by moderation: personal data"
    assert read.text is None and read.author is None and read.rating == 1
    merkle.verify_inclusion(0, 2, base64.b64decode(after.leaf_hash), proof, root)


def test_erasure_hides_text_and_author_and_keeps_the_rating(db, tenant, log_config) -> None:
    from o2oloop.privacy import service as privacy
    from o2oloop.reviews import ratings

    visitor = make_visitor(db)
    review = _post(db, visitor, log_config, visit_id=pay(db, tenant, visitor), rating=5, text="!")
    with db.reading() as session:
        before = ratings.ratings(session, merchant_id=tenant.merchant_id)
    with db.transaction() as session:
        privacy.erase_consumer(session, principal=consumer_principal(visitor.consumer_id))
    with db.reading() as session:
        row = session.get(Review, review.id)
        author_link = row.consumer_id
        read = views.review_read(session, row)
        after = ratings.ratings(session, merchant_id=tenant.merchant_id)
    assert author_link is None
    assert read.text is None and read.author is None
    assert read.hidden.reason == "erasure_request" and read.hidden.by == "data_subject"
    assert after.all == before.all and after.all.count == 1
    assert _entry(db, 1)["reason"] == "erasure_request"


def test_checkpoints_after_every_n_entries_and_when_due(db, tenant, log_config, frozen_clock):
    visitor = make_visitor(db)
    for rating in (1, 2, 3, 4, 5):
        _post(db, visitor, log_config, visit_id=pay(db, tenant, visitor), rating=rating)
    with db.reading() as session:
        sizes = list(session.scalars(select(LogCheckpoint.size).order_by(LogCheckpoint.id)))
    assert sizes == [4]  # checkpoint_every=4
    with db.transaction() as session:
        assert log.checkpoint(session, log=log_config) is not None  # a bigger tree: due
        assert log.checkpoint(session, log=log_config) is None  # nothing new, not yet stale
    frozen_clock.advance(timedelta(minutes=10))
    with db.transaction() as session:
        assert log.checkpoint(session, log=log_config).size == 5  # stale: signed again
        assert session.scalar(select(func.count()).select_from(LogCheckpoint)) == 3


def test_fraud_signals_flag_bursts_and_one_phone_everywhere(db, log_config, frozen_clock):
    tenant = make_tenant(db)
    flagged = []
    for _ in range(5):
        visitor = make_visitor(db)
        review = _post(db, visitor, log_config, visit_id=pay(db, tenant, visitor), rating=5)
        flagged.append(review.flags)
    assert flagged[:4] == [[], [], [], []] and flagged[4] == ["new_member_burst"]
    frozen_clock.advance(timedelta(days=9))
    roamer = make_visitor(db)
    flags = []
    for _ in range(5):
        shop = make_tenant(db)
        flags.append(_post(db, roamer, log_config, visit_id=pay(db, shop, roamer), rating=1).flags)
    assert "one_phone_many_merchants" in flags[4] and all(
        "one_phone_many_merchants" not in f for f in flags[:4]
    )


def test_each_change_records_its_event(db, tenant, log_config) -> None:
    from o2oloop.jobs.models import OutboxEntry

    visitor = make_visitor(db)
    review = _post(db, visitor, log_config, visit_id=pay(db, tenant, visitor), rating=3)
    with db.transaction() as session:
        replies.reply(
            session,
            principal=_admin(tenant),
            review_id=review.id,
            data=ReplyCreate(text="Thanks"),
            log_config=log_config,
        )
        moderation.hide(
            session,
            principal=PLATFORM,
            review_id=review.id,
            data=HideCreate(target="reply", reason="illegal_content"),
            log_config=log_config,
        )
    with db.reading() as session:
        rows = session.execute(
            select(OutboxEntry.type, OutboxEntry.payload).where(
                OutboxEntry.merchant_id == tenant.merchant_id,
                OutboxEntry.type.like("review.%"),
            )
        ).all()
    types = sorted(t for t, _ in rows)
    assert types == ["review.hidden", "review.posted", "review.replied"]
    hidden = json.loads(next(p for t, p in rows if t == "review.hidden"))
    assert hidden["reason"] == "illegal_content" and hidden["log_entry"] == 2


def test_a_code_a_campaign_issued_marks_the_review(db, tenant, log_config, frozen_clock) -> None:
    from o2oloop import clock
    from o2oloop.campaigns.models import Arm, Campaign, CampaignState, CampaignTarget, Channel
    from o2oloop.codes.models import Redemption
    from o2oloop.db import new_id
    from o2oloop.reviews import ratings

    visitor = make_visitor(db)
    redemption_id = redeem(db, tenant, visitor)
    plain = make_visitor(db)
    _post(db, plain, log_config, visit_id=pay(db, tenant, plain), rating=2)
    with db.transaction() as session:
        redemption = session.get(Redemption, redemption_id)
        campaign = Campaign(
            id=new_id("cmp"),
            merchant_id=tenant.merchant_id,
            name="Come back",
            state=CampaignState.RUNNING,
            audience={},
            trigger={},
            offer_id=redemption.offer_id,
            channel=Channel.INBOX,
            message_body="Hi",
            holdout_bps=1000,
            cap_days=7,
            gross_margin_bps=6000,
            attribution_days=30,
            pre_period_days=30,
            currency="CNY",
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(campaign)
        session.flush()
        session.add(
            CampaignTarget(
                campaign_id=campaign.id,
                merchant_id=tenant.merchant_id,
                consumer_id=visitor.consumer_id,
                occurrence="now",
                arm=Arm.TREATMENT,
                state="sent",
                targeted_at=clock.now(),
                measure_until=clock.now(),
                code_id=redemption.code_id,
            )
        )
    review = _post(db, visitor, log_config, redemption_id=redemption_id, rating=5)
    assert review.campaign_code and _entry(db, 1)["visit"]["campaign"] is True
    with db.reading() as session:
        shown = ratings.ratings(session, merchant_id=tenant.merchant_id)
    assert (shown.all.count, shown.all.mean) == (2, 3.5)
    assert (shown.without_campaign_codes.count, shown.without_campaign_codes.mean) == (1, 2.0)

"""The offline notifier reaches people who may not be reps (a pool's manager) and the
team's wins channel, once per idempotency key, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from bots.notifier import WINS_CHANNEL, Message, OfflineNotifier
from store import reps as rep_store
from store.db import Database
from store.models import Notification

ESCALATION = Message(kind="sla_escalation", text="Please step in", blocks=[], lead_id="abc")
WIN = Message(kind="win", text="Sam won Acme", blocks=[{"type": "section"}], lead_id="abc")


def rows(db: Database) -> list[Notification]:
    with db.read() as session:
        return list(session.scalars(select(Notification).order_by(Notification.id)))


def test_a_person_who_is_not_a_rep_is_notified_once_by_email(db: Database) -> None:
    notifier = OfflineNotifier(db)
    ids = {
        notifier.notify_person("morgan@example.com", "Morgan", ESCALATION, "k1") for _ in range(3)
    }
    assert len(ids) == 1
    [row] = rows(db)
    assert (row.rep_id, row.recipient, row.kind, row.lead_id) == (
        None,
        "morgan@example.com",
        "sla_escalation",
        "abc",
    )


def test_a_person_who_is_a_rep_gets_the_message_in_their_inbox(db: Database) -> None:
    with db.read() as session:
        rep = rep_store.list_reps(session)[0]
    notifier = OfflineNotifier(db)
    notifier.notify_person(f"  {rep.email.upper()} ", rep.name, ESCALATION, "k1")
    [row] = rows(db)
    assert row.rep_id == rep.id


def test_a_win_is_announced_once_in_the_wins_channel(db: Database) -> None:
    notifier = OfflineNotifier(db)
    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = set(pool.map(lambda _: notifier.announce(WIN, "lead-abc:win"), range(8)))
    assert len(ids) == 1
    OfflineNotifier(db, wins_channel="#sales-wins").announce(WIN, "lead-def:win")
    first, second = rows(db)
    assert (first.rep_id, first.recipient, first.kind) == (None, WINS_CHANNEL, "win")
    assert first.blocks == {"blocks": [{"type": "section"}]}
    assert second.recipient == "#sales-wins"


def test_a_key_is_one_delivery_whichever_way_it_is_sent(db: Database) -> None:
    notifier = OfflineNotifier(db)
    with db.read() as session:
        owner = rep_store.owner_of(rep_store.list_reps(session)[0])
    first = notifier.notify(owner, ESCALATION, "same")
    assert notifier.notify_person("morgan@example.com", "Morgan", ESCALATION, "same") == first
    assert notifier.announce(WIN, "same") == first
    [row] = rows(db)
    assert (row.rep_id, row.recipient) == (owner.rep_id, owner.email)

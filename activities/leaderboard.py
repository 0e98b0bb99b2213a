"""The weekly leaderboard, posted once per week to the team's wins channel."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import activity

from activities.errors import classified
from bots.blocks.leaderboard import leaderboard_message
from bots.notifier import Message, Notifier
from domain.leaderboard import rank
from store import leaderboard as leaderboard_store
from store.db import Database


class LeaderboardInput(BaseModel):
    """The week that ends at ``end`` (the schedule's time)."""

    end: datetime


class LeaderboardPosted(BaseModel):
    reps: int
    notification_id: int


class LeaderboardActivities:
    def __init__(self, db: Database, notifier: Notifier) -> None:
        self._db = db
        self._notifier = notifier

    @activity.defn(name="post_leaderboard")
    @classified
    def post(self, params: LeaderboardInput) -> LeaderboardPosted:
        start = params.end - timedelta(days=7)
        with self._db.read() as session:
            rows = rank(leaderboard_store.tallies(session, start, params.end))
        last = (params.end - timedelta(seconds=1)).date()
        text, blocks = leaderboard_message(rows, start.date(), last)
        key = f"leaderboard:{params.end.isoformat()}"
        posted = self._notifier.announce(Message(kind="leaderboard", text=text, blocks=blocks), key)
        return LeaderboardPosted(reps=len(rows), notification_id=posted)

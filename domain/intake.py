"""How much of one person's posts the intake lets through: a per-address flood limit
(a fixed window of so many posts) and a cap on resubmissions kept in detail.

Pure: the store keeps the counters and calls ``admit`` inside its transaction."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from pydantic import BaseModel


class FloodPolicy(BaseModel):
    """At most ``max_posts`` posts per address in ``window_s`` seconds; of the posts let
    through, the first and ``detail_cap`` resubmissions are kept in detail."""

    window_s: float = 60.0
    max_posts: int = 30
    detail_cap: int = 20


class IntakeCounts(BaseModel):
    """One lead's counters as stored."""

    posts: int = 0
    window_started_at: datetime
    window_posts: int = 0


class Admission(BaseModel):
    """Whether this post goes on to the workflow, in detail or counted only; when refused,
    how long the client should wait."""

    allowed: bool
    detailed: bool = False
    retry_after_s: int = 0
    counts: IntakeCounts


def admit(policy: FloodPolicy, counts: IntakeCounts, now: datetime) -> Admission:
    """The decision for one more post, and the counters to store after it."""
    window = timedelta(seconds=policy.window_s)
    started, in_window = counts.window_started_at, counts.window_posts
    if now - started >= window or now < started:
        started, in_window = now, 0
    if in_window >= policy.max_posts:
        wait = (started + window - now).total_seconds()
        return Admission(allowed=False, retry_after_s=max(1, int(wait) + 1), counts=counts)
    posts = counts.posts + 1
    return Admission(
        allowed=True,
        detailed=posts <= 1 + policy.detail_cap,
        counts=IntakeCounts(posts=posts, window_started_at=started, window_posts=in_window + 1),
    )


class FirstPosts:
    """The leads whose first post this process has let through without writing it down.

    Almost every lead is posted once, so the intake does not write a counter for a lead's
    first post: it remembers the lead here, and claims the database counters from the
    second post on. The limits therefore count from the second post an address makes
    through a process (one post more than the setting per process, at most); memory is
    bounded, the oldest entries going first."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def first(self, lead_id: str) -> bool:
        """True (and remembered) the first time ``lead_id`` is seen."""
        if lead_id in self._seen:
            self._seen.move_to_end(lead_id)
            return False
        self._seen[lead_id] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True

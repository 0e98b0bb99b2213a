"""How much of one person's posts the intake lets through: a per-address flood limit
(a fixed window of so many posts) and a cap on resubmissions kept in detail.

Pure: the store keeps the counters and calls ``admit`` inside its transaction."""

from __future__ import annotations

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

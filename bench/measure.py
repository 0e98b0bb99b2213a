"""What the speed-to-lead bench records per request and per phase, and the arithmetic on
it: percentiles, throughput windows, CPU shares."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def db_time(value: str | None) -> float | None:
    """A UTC timestamp as SQLAlchemy stores it in SQLite (naive text) → epoch seconds."""
    if value is None:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


@dataclass
class Sample:
    key: str
    sent: float  # epoch seconds, just before the request left
    accepted: float | None = None  # response (202 / workflow started)
    done: float | None = None  # owner notified / third no-op activity ran
    closed: float | None = None  # baseline only: workflow closed (server time)
    error: str | None = None
    lag: float = 0.0  # open loop: how late the send was against its schedule


@dataclass
class Phase:
    name: str
    samples: list[Sample]
    wall_s: float
    cpu: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)
    server_ms: list[float] = field(default_factory=list)
    closed_loop: bool = False
    temporal: dict[str, list[float]] = field(default_factory=dict)  # see bench/history.py

    @property
    def completed(self) -> list[Sample]:
        return [s for s in self.samples if s.done is not None]

    def latencies_ms(self) -> list[float]:
        return [(s.done - s.sent) * 1000 for s in self.samples if s.done is not None]

    def closed_ms(self) -> list[float]:
        return [(s.closed - s.sent) * 1000 for s in self.samples if s.closed is not None]

    def accept_ms(self) -> list[float]:
        return [(s.accepted - s.sent) * 1000 for s in self.samples if s.accepted is not None]

    def window(self) -> tuple[int, float]:
        """Completions and seconds over which to count throughput.

        Open loop: every completion, from the first send to the last completion (the
        sustained rate). Closed loop (peak): the saturated stretch, from the first
        completion to the last send, while exactly ``concurrency`` items are in flight;
        neither the ramp-up (the first batch) nor the drain (the stragglers once nothing
        is left to send) dilutes the rate. Too short a stretch (barely more items than
        the concurrency): everything, from the first send to the last completion."""
        done = sorted(s.done for s in self.samples if s.done is not None)
        if len(done) < 2:
            return 0, 0.0
        first_sent = min(s.sent for s in self.samples)
        if self.closed_loop:
            last_sent = max(s.sent for s in self.samples)
            saturated = [d for d in done if d <= last_sent]
            if len(saturated) >= 20:
                return len(saturated) - 1, saturated[-1] - saturated[0]
        return len(done), done[-1] - first_sent

    def per_second(self) -> float:
        count, span = self.window()
        return count / span if span > 0 else math.nan

    def failure_count(self) -> int:
        return len(self.failures)


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after.get(name, 0.0) - before.get(name, 0.0) for name in before}


def combined_rate(phases: list[Phase]) -> float:
    """Throughput over several rounds of the same kind: their windows added up."""
    windows = [phase.window() for phase in phases]
    span = sum(w[1] for w in windows)
    return sum(w[0] for w in windows) / span if span > 0 else math.nan


@dataclass
class Results:
    steady: Phase
    baseline: Phase
    peak_lifecycle: list[Phase]
    peak_baseline: list[Phase]
    order: list[Phase]  # as run


def ours_cpu(phase: Phase) -> float:
    """CPU seconds of the stack's processes and the bench during a phase."""
    return sum(v for k, v in phase.cpu.items() if k not in ("machine", "steal"))


def others_share(phase: Phase) -> float:
    """Share of the machine's CPU capacity that other tenants used during a phase."""
    capacity = phase.wall_s * (os.cpu_count() or 1)
    return max(0.0, phase.cpu.get("machine", 0.0) - ours_cpu(phase)) / capacity if capacity else 0.0


def cpu_per_item_ms(phases: list[Phase]) -> float:
    done = sum(len(phase.completed) for phase in phases)
    return sum(ours_cpu(phase) for phase in phases) * 1000 / done if done else math.nan

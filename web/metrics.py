"""Prometheus metrics. Intake counters live in this process; routing figures are read from
the shared database at scrape time, so every web replica reports the same cluster-wide
values for them (aggregate those with max, not sum)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from store import leads as lead_store
from store.db import Database

SPEED_TO_LEAD_BOUNDS_MS = [100, 250, 500, 750, 1000, 2500, 5000, 15000, 60000, 300000, 900000]


class RoutingCollector(Collector):
    def __init__(self, db: Database) -> None:
        self._db = db

    def collect(self) -> Iterator[Metric]:
        with self._db.read() as session:
            routed = lead_store.count_routed(session)
            buckets, count, total_ms = lead_store.speed_to_lead_histogram(
                session, SPEED_TO_LEAD_BOUNDS_MS
            )
        yield CounterMetricFamily("leadflow_leads_routed", "Leads routed to an owner", value=routed)
        histogram = HistogramMetricFamily(
            "leadflow_speed_to_lead_seconds",
            "Time from the form POST to the owner being notified",
        )
        histogram.add_metric(
            [],
            [(str(b / 1000), c) for b, c in zip(SPEED_TO_LEAD_BOUNDS_MS, buckets, strict=True)]
            + [("+Inf", count)],
            sum_value=total_ms / 1000,
        )
        yield histogram


class Metrics:
    """The registry of one web app instance."""

    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry()
        self.accepted = Counter(
            "leadflow_leads_accepted",
            "Submissions accepted by the intake",
            registry=self.registry,
        )
        self.rejected = Counter(
            "leadflow_leads_rejected",
            "Submissions refused by the intake, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "leadflow_crm_webhooks",
            "CRM webhook notices, by CRM and outcome (accepted, repeated, refused)",
            ["crm", "outcome"],
            registry=self.registry,
        )
        self.registry.register(RoutingCollector(db))

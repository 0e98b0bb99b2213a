"""The KPIs end to end: leads walked through their stages with the events API on the real
stack give the expected figures at ``GET /api/v1/kpis``, per group too, and the CSV
export carries the same figures as the JSON, digit for digit."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from store.models import Lead
from tests.conftest import Stack
from tests.lifecycle_support import event, new_lead, publish


def _with_kpis(data: dict[str, Any]) -> None:
    quarter = (datetime.now(UTC).month - 1) // 3 + 1
    period = f"{datetime.now(UTC).year}-Q{quarter}"
    data["kpis"] = {
        "currency": "USD",
        "small_sample": 5,
        "quotas": [{"rep": "avery.park@example.com", "period": period, "revenue": 1000}],
        "forecasts": [{"period": period, "revenue": 2000}],
    }


async def _walk(stack: Stack, lead_id: str, *steps: tuple[str, dict[str, Any]]) -> None:
    for type_, fields in steps:
        await event(stack, lead_id, type_, **fields)


async def _kpis(stack: Stack, **params: Any) -> dict[str, Any]:
    today = datetime.now(UTC).date().isoformat()
    response = await stack.http.get(
        "/api/v1/kpis", params={"from": today, "to": today, **params}, headers=stack.auth
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.timeout(120)
async def test_walked_leads_give_the_expected_figures_and_the_csv_matches(stack: Stack) -> None:
    publish(stack, _with_kpis)
    google = [await new_lead(stack, utm_source="google") for _ in range(3)]
    linkedin = [await new_lead(stack, utm_source="linkedin") for _ in range(3)]
    to_won: tuple[tuple[str, dict[str, Any]], ...] = (
        ("contacted", {}),
        ("meeting_booked", {}),
        ("qualified", {}),
        ("proposal_sent", {}),
        ("won", {"amount": "1000.50", "currency": "USD"}),
    )
    to_lost = (*to_won[:4], ("lost", {"reason": "price"}))
    await _walk(stack, google[0], *to_won)
    await _walk(stack, google[1], *to_lost)
    await _walk(stack, google[2], ("contacted", {}), ("meeting_booked", {}))
    await _walk(stack, linkedin[0], ("contacted", {}))

    body = await _kpis(stack)
    k = body["kpis"]
    assert k["leads_generated"]["value"] == 6
    assert (k["follow_up_time"]["count"], k["follow_up_time"]["of"]) == (4, 6)
    assert k["follow_up_time"]["value"] is not None and k["follow_up_time"]["value"] >= 0
    # Every contact came within the SLA (hours); the untouched leads are not due yet.
    assert (k["sla_compliance"]["count"], k["sla_compliance"]["of"]) == (4, 4)
    assert (k["qualification_rate"]["count"], k["qualification_rate"]["of"]) == (2, 6)
    assert k["qualification_rate"]["value"] == pytest.approx(2 / 6)
    assert (k["proposal_rate"]["count"], k["proposal_rate"]["of"]) == (2, 2)
    assert (k["win_rate"]["count"], k["win_rate"]["of"]) == (1, 2)
    assert (k["close_rate"]["count"], k["close_rate"]["of"]) == (1, 2)
    assert k["deals_closed"]["value"] == 1
    assert k["revenue"]["value"] == pytest.approx(1000.50)
    assert k["average_deal_size"]["value"] == pytest.approx(1000.50)
    assert k["activity_volume"]["count"] == 5 + 5 + 2 + 1
    assert k["sales_cycle_length"]["count"] == 2
    # The quarter's forecast, prorated to the one day asked for.
    today = datetime.now(UTC).date()
    first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    last = date(first.year + (first.month == 10), (first.month + 2) % 12 + 1, 1)
    daily = 2000 / (last - first).days
    assert k["forecast_accuracy"]["value"] == pytest.approx((1000.50 - daily) / daily * 100)
    assert k["quota_attainment"]["value"] == pytest.approx(1000.50 / (1000 / (last - first).days))
    funnel = k["funnel"]
    assert funnel["value"] is None
    assert funnel["stages"] == {"leads": 6, "meetings": 3, "proposals": 2, "won": 1}
    assert funnel["leak"]
    # Small samples say so (small_sample is 5 in this configuration).
    assert k["win_rate"]["note"] and k["win_rate"]["small_sample"] is True

    by_source = await _kpis(stack, group_by="source")
    groups = {g["key"]: g["kpis"] for g in by_source["groups"]}
    assert set(groups) == {"google", "linkedin"}
    assert groups["google"]["leads_generated"]["value"] == 3
    assert groups["google"]["deals_closed"]["value"] == 1
    assert groups["linkedin"]["qualification_rate"]["count"] == 0
    assert by_source["kpis"] == body["kpis"]

    # Leads of a source only.
    only = await _kpis(stack, source="linkedin")
    assert only["kpis"]["leads_generated"]["value"] == 3

    # The CSV: the same figures, digit for digit.
    day = datetime.now(UTC).date().isoformat()
    response = await stack.http.get(
        "/api/v1/kpis",
        params={"from": day, "to": day, "group_by": "source", "format": "csv"},
        headers=stack.auth,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    by_key = {(r["group"], r["kpi"]): r for r in rows}
    for group, figures in [("all", by_source["kpis"]), *groups.items()]:
        for key, figure in figures.items():
            row = by_key[(group, key)]
            expected = "" if figure["value"] is None else str(figure["value"])
            assert row["value"] == expected, (group, key)
            assert row["count"] == ("" if figure["count"] is None else str(figure["count"]))
            assert row["of"] == ("" if figure["of"] is None else str(figure["of"]))

    # The facts behind the figures are on the leads.
    with stack.db.read() as session:
        won = session.scalars(select(Lead).where(Lead.id == google[0])).one()
    assert won.won_amount_minor == 100050 and won.currency == "USD"
    assert won.source == "google" and won.pool == "Inbound"
    assert won.sla_due_at is not None and won.first_contacted_at is not None


BAD_QUERIES = [
    ({"from": "2026-13-01"}, "from"),
    ({"from": "2026-12-02", "to": "2026-12-01"}, "from"),
    ({"from": "2020-01-01", "to": "2026-12-01"}, "to"),
    ({"group_by": "planet"}, "group_by"),
    ({"format": "xml"}, "format"),
]


async def test_bad_queries_name_the_field_and_a_token_is_needed(stack: Stack) -> None:
    for params, field in BAD_QUERIES:
        response = await stack.http.get("/api/v1/kpis", params=params, headers=stack.auth)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["detail"][0]["field"] == field, params
    assert (await stack.http.get("/api/v1/kpis")).status_code == 401

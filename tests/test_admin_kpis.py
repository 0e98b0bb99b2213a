"""The KPI page of the admin app (``/admin/kpis``) over real HTTP: leads walked through
their stages with the lifecycle API on the real stack show on the page with the figures
``store.kpis.report`` gives, digit for digit, beside the leaderboard the wins channel
posts and the SLA breaches; a team lead sees their pools only; filters that cannot be
used are named on the page; a source written as markup is shown as text; the CSV equals
the API's. And the figures written for people, the preset periods."""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from temporalio.client import Client

from domain.kpis import KPI_KEYS, KpiQuery, KpiReport
from domain.leaderboard import POINTS
from store import config as config_store
from store import kpis as kpi_store
from store.db import Database
from tests.conftest import API_TOKEN, AdminUsers, Stack, csrf_of, http_login, make_settings, serve
from tests.lifecycle_support import event, lead, new_lead, publish
from web.admin.kpi_filters import preset_dates
from web.admin.kpi_format import duration, number, period_text, shown
from web.app import create_app

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

TEAM_LEAD = "team.lead@example.com"
SCRIPT = "<script>alert(1)</script>"
TO_WON = ("contacted", "meeting_booked", "qualified", "proposal_sent", "won")
FIELDS = {"won": {"amount": "1200.50", "currency": "USD"}, "lost": {"reason": "price"}}
TO_LOST = ("contacted", "meeting_booked", "qualified", "proposal_sent", "lost")


def two_pools(config: dict[str, Any]) -> None:
    """Inbound (managed by the team lead) and EMEA AE (DACH leads, an SLA of a second,
    so a lead left alone there is a breach at once)."""
    config["reps"].append({"email": TEAM_LEAD, "name": "Terry Lead"})
    config["pools"][0]["manager"] = TEAM_LEAD
    config["pools"].append(
        {
            "name": "EMEA AE",
            "members": [{"rep": "riley.chen@example.com"}],
            "sla": {
                "remind_after": "1s",
                "reassign_after": "1h",
                "escalate_after": "2h",
                "business_hours": False,
            },
        }
    )
    config["territories"] = [{"name": "DACH", "countries": ["DE", "AT", "CH"]}]
    config["rules"] = [
        {
            "name": "DACH",
            "when": {"field": "country", "op": "in_territory", "value": "DACH"},
            "assign": {"pool": "EMEA AE"},
        }
    ]
    config["kpis"] = {"currency": "USD", "small_sample": 3}


@dataclass
class Seeded:
    inbound: list[str]
    emea: list[str]
    walked: dict[str, tuple[str, ...]]  # lead id → the events sent
    owners: dict[str, str]  # lead id → owner email


async def seed(stack: Stack) -> Seeded:
    """Six leads through the real lifecycle: four in Inbound (sources google, linkedin
    and a markup-like one), two in EMEA AE, one of them never contacted."""
    publish(stack, two_pools)
    inbound = [
        await new_lead(stack, utm_source=source)
        for source in ("google", "google", SCRIPT, "linkedin")
    ]
    emea = [await new_lead(stack, country="Germany", utm_source="partner") for _ in range(2)]
    walked = {
        inbound[0]: TO_WON,
        inbound[1]: TO_LOST,
        inbound[2]: ("contacted", "meeting_booked"),
        emea[0]: TO_WON,
    }
    for lead_id, steps in walked.items():
        for step in steps:
            fields = FIELDS.get(step, {})
            await event(stack, lead_id, step, **fields)
    owners = {}
    for lead_id in inbound + emea:
        body = await lead(stack, lead_id)
        owners[lead_id] = body["owner"]["email"]
    return Seeded(inbound, emea, walked, owners)


def report(stack: Stack, **query: Any) -> KpiReport:
    today = datetime.now(UTC).date()
    asked = KpiQuery(start=today - timedelta(days=29), end=today, **query)
    with stack.db.read() as session:
        found = config_store.published(session)
        assert found is not None
        return kpi_store.report(session, asked, found[1], tz=ZoneInfo("UTC"), now=datetime.now(UTC))


def tiles(page: str) -> dict[str, dict[str, str]]:
    """Each tile's data attributes and the text of its value."""
    found = {}
    for match in re.finditer(
        r'<article class="kpi-tile([^"]*)" id="kpi-(\w+)" data-key="\w+" '
        r'data-value="([^"]*)" data-count="([^"]*)" data-of="([^"]*)">.*?'
        r'<p class="kpi-value">([^<]*)</p>',
        page,
        re.S,
    ):
        classes, key, value, count, of, text = match.groups()
        found[key] = {"classes": classes, "value": value, "count": count, "of": of}
        found[key]["text"] = html.unescape(text)
    return found


def text(value: object) -> str:
    return "" if value is None else str(value)


@contextlib.asynccontextmanager
async def signed_in(stack: Stack, email: str, password: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the stack's web app, signed in as ``email``."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        assert (await http_login(http, email, password)).status_code == 303
        yield http


@SQLITE
async def test_the_page_shows_the_reports_figures_the_leaderboard_and_the_breaches(
    stack: Stack, admin_users: AdminUsers
) -> None:
    seeded = await seed(stack)
    # The EMEA lead nobody contacted missed its one-second SLA.
    for _ in range(50):
        if report(stack).kpis["sla_compliance"].of == 5:
            break
        await asyncio.sleep(0.1)
    whole = report(stack)

    async with signed_in(stack, admin_users.viewer, admin_users.password) as http:
        response = await http.get("/admin/kpis")
        assert response.status_code == 200, response.text
        page = response.text

        # Every KPI tile carries the report's figure, and shows it for people.
        shown_tiles = tiles(page)
        assert list(shown_tiles) == list(KPI_KEYS)
        for key in KPI_KEYS:
            figure = whole.kpis[key]
            tile = shown_tiles[key]
            assert tile["value"] == text(figure.value), key
            assert (tile["count"], tile["of"]) == (text(figure.count), text(figure.of)), key
            assert tile["text"] == shown(key, figure).text, key
            assert ("small-sample" in tile["classes"]) == figure.small_sample, key
        assert shown_tiles["leads_generated"]["text"] == "6"
        assert shown_tiles["deals_closed"]["text"] == "2"
        assert shown_tiles["revenue"]["text"] == "2,401.00 USD"
        assert shown_tiles["win_rate"]["text"] == "66.7 %"  # 2 won, 1 lost
        assert shown_tiles["quota_attainment"]["text"] == "—"  # no quota configured
        assert "no quota configured" in page
        assert whole.kpis["funnel"].stages == {"leads": 6, "meetings": 4, "proposals": 3, "won": 2}
        assert shown_tiles["funnel"]["text"] == "6 → 4 → 3 → 2"

        # The charts are inline SVG, without the script and style the CSP would refuse.
        charts = re.findall(r"<svg [^>]*class=\"pygal-chart kpi-chart\".*?</svg>", page, re.S)
        assert len(charts) == 4
        assert all("<script" not in c and "<style" not in c and "style=" not in c for c in charts)
        funnel = charts[0]
        values = [int(v) for v in re.findall(r'class="value">(\d+)</text>', funnel)]
        assert sorted(values) == [2, 3, 4, 6]
        css = await http.get("/admin/kpis/charts.css")
        assert css.status_code == 200 and ".kpi-chart .color-0" in css.text

        # A source that looks like markup is text, in the chart and in the filter.
        assert SCRIPT not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page

        # Per rep: the report's figures by rep.
        by_rep = report(stack, group_by="rep")
        for group in by_rep.groups:
            row = re.search(rf'<tr data-rep="{re.escape(group.key)}">(.*?)</tr>', page, re.S)
            assert row is not None, group.key
            assert shown("leads_generated", group.kpis["leads_generated"]).text in row.group(1)

        # The leaderboard: points for what each rep did, as the wins channel counts them.
        points: Counter[str] = Counter()
        for lead_id, steps in seeded.walked.items():
            points[seeded.owners[lead_id]] += sum(POINTS.get(s, 0) for s in steps)
        board = re.search(r'<table class="compact" id="leaderboard">(.*?)</table>', page, re.S)
        assert board is not None
        for email, score in points.items():
            row = re.search(rf'<tr data-rep="{re.escape(email)}">(.*?)</tr>', board.group(1), re.S)
            assert row is not None, email
            assert f'<td class="num points">{score}</td>' in row.group(1)

        # The SLA breach: counted, and linked to the lead's page.
        total, _ = breaches(stack)
        assert total >= 1
        assert f'id="breach-count">{total}</span>' in page
        assert f'href="/admin/leads/{seeded.emea[1]}"' in page

        # The CSV is the API's, digit for digit.
        today = datetime.now(UTC).date()
        period = {"from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()}
        mine = await http.get("/admin/kpis.csv", params=period)
        api = await stack.http.get(
            "/api/v1/kpis",
            params={**period, "format": "csv"},
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
        assert mine.status_code == api.status_code == 200
        assert mine.text == api.text
        assert mine.headers["content-type"].startswith("text/csv")

        # Another pool: other figures.
        emea_page = (await http.get("/admin/kpis", params={"pool": "EMEA AE"})).text
        assert tiles(emea_page)["leads_generated"]["text"] == "2"

    # A team lead sees their pool only, whatever the link asks for.
    async with signed_in(stack, admin_users.team_lead, admin_users.password) as http:
        page = (await http.get("/admin/kpis")).text
        assert tiles(page)["leads_generated"]["text"] == "4"
        options = re.search(r'<select id="pool".*?</select>', page, re.S)
        assert options is not None and "EMEA AE" not in options.group(0)
        asked = (await http.get("/admin/kpis", params={"pool": "EMEA AE"})).text
        assert "you can see only the pools you manage (Inbound)" in asked
        assert tiles(asked)["leads_generated"]["text"] == "4"
        assert seeded.emea[1] not in asked  # not their breach
        csv_text = (await http.get("/admin/kpis.csv")).text
        assert "all,leads_generated,4.0," in csv_text


def breaches(stack: Stack) -> tuple[int, list[kpi_store.SlaBreach]]:
    today = datetime.now(UTC).date()
    asked = KpiQuery(start=today - timedelta(days=29), end=today)
    with stack.db.read() as session:
        return kpi_store.sla_breaches(session, asked, tz=ZoneInfo("UTC"), now=datetime.now(UTC))


BAD = [
    ({"from": "2026-13-01"}, "From date: “2026-13-01” is not a date"),
    ({"from": "2026-03-05", "to": "2026-03-01"}, "From date: 5 Mar 2026 is after the To date"),
    ({"from": "2020-01-01", "to": "2026-01-01"}, "To date: the period is 2,193 days long"),
    ({"period": "forever"}, "Period: there is no preset “forever”"),
    ({"pool": "Nowhere"}, "Pool: there is no pool named “Nowhere”"),
    ({"rep": "nobody@example.com"}, "Rep: “nobody@example.com” is not a rep you can see"),
]


@SQLITE
async def test_filters_that_cannot_be_used_are_named_and_the_default_period_shown(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    publish(db, two_pools)
    today = datetime.now(UTC).date()
    default_from = (today - timedelta(days=29)).isoformat()
    settings = make_settings(data_dir=tmp_path, database_url=db.url, api_token=API_TOKEN)
    async with serve(create_app(settings, db, client, API_TOKEN)) as http:
        assert (await http_login(http, admin_users.viewer, admin_users.password)).status_code == 303
        for params, message in BAD:
            response = await http.get("/admin/kpis", params=params)
            assert response.status_code == 200, params
            page = html.unescape(response.text)
            assert message in page, (params, message)
            assert f'id="from" name="from" type="date" value="{default_from}"' in page, params
        # A preset is a link; its dates fill the form.
        page = (await http.get("/admin/kpis", params={"period": "this_month"})).text
        first = today.replace(day=1).isoformat()
        assert f'id="from" name="from" type="date" value="{first}"' in page
        assert 'class="preset on" href="/admin/kpis?period=this_month"' in page
        assert 'href="/admin/kpis.csv?from=' in page
        # The page is in the navigation, under Reports, for viewers.
        home = (await http.get("/admin")).text
        assert re.search(r'Reports</h2>\s*<ul>\s*<li><a class="nav-item" href="/admin/kpis">', home)
        # Signed out: the login page, and back to the same filters after it.
        await http.post("/admin/logout", data={"csrf_token": csrf_of(home)})
        anonymous = await http.get("/admin/kpis", params={"period": "this_year"})
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/admin/login?next=/admin/kpis%3Fperiod%3Dthis_year"

        # A team lead who manages no pool is told so, and sees no figures.
        publish(db, lambda config: config["reps"].append({"email": TEAM_LEAD, "name": "T"}))
        assert (await http_login(http, TEAM_LEAD, admin_users.password)).status_code == 303
        page = html.unescape((await http.get("/admin/kpis")).text)
        assert "You manage no pool" in page
        assert tiles(page)["leads_generated"]["text"] == "0"


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (252.4, "seconds", "4 min 12 s"),
        (0.3, "seconds", "under 1 s"),
        (3 * 3600 + 5 * 60 + 9, "seconds", "3 h 5 min"),
        (2 * 86400 + 4 * 3600, "seconds", "2 d 4 h"),
        (0.375, "share", "37.5 %"),
        (12.44, "days", "12.4 days"),
        (-3.15, "percent", "\u22123.1 %"),
        (12.5, "percent", "+12.5 %"),
        (2401.0, "USD", "2,401.00 USD"),
        (1234.0, "leads", "1,234"),
        (0.1357, "events per rep per day", "0.14 per rep per day"),
        (None, "share", "—"),
    ],
)
def test_figures_are_written_for_people(value: float | None, unit: str, text: str) -> None:
    assert number(value, unit) == text
    assert duration(59.6) == "1 min 0 s"


def test_preset_periods_and_how_a_period_reads() -> None:
    today = date(2026, 11, 18)  # a Wednesday in Q4
    assert preset_dates("this_week", today) == (date(2026, 11, 16), today)
    assert preset_dates("last_7_days", today) == (date(2026, 11, 12), today)
    assert preset_dates("this_month", today) == (date(2026, 11, 1), today)
    assert preset_dates("last_30_days", today) == (date(2026, 10, 20), today)
    assert preset_dates("this_quarter", today) == (date(2026, 10, 1), today)
    assert preset_dates("last_quarter", today) == (date(2026, 7, 1), date(2026, 9, 30))
    assert preset_dates("last_quarter", date(2026, 2, 1)) == (date(2025, 10, 1), date(2025, 12, 31))
    assert preset_dates("this_year", today) == (date(2026, 1, 1), today)
    assert period_text(date(2026, 11, 3), date(2026, 11, 9)) == "3\u20139 Nov 2026"
    assert period_text(date(2025, 12, 1), date(2026, 1, 31)) == "1 Dec 2025 \u2013 31 Jan 2026"

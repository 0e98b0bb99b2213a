"""The KPI page in a real browser, on the real stack: its charts are SVG drawn in the
page under the Content-Security-Policy (nothing refused), and choosing another pool in
the filter form changes the funnel's numbers. Screenshots (wide and narrow) go to
``/tmp/shots_kpis/`` for people to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import AdminUsers, Stack, login
from tests.test_admin_kpis import SCRIPT, seed

SHOTS = Path("/tmp/shots_kpis")


async def funnel_numbers(page: Page) -> list[int]:
    texts = await page.locator("#chart-funnel svg text.value").all_text_contents()
    return sorted(int(t.replace(",", "")) for t in texts)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_charts_render_and_the_pool_filter_changes_the_funnel(
    stack: Stack, browser: Browser, admin_users: AdminUsers
) -> None:
    await seed(stack)
    context = await browser.new_context(viewport={"width": 1360, "height": 900})
    page = await context.new_page()
    refused: list[str] = []
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    await login(page, stack.base_url, admin_users.viewer, admin_users.password)
    await page.click("text=KPIs")
    await expect(page.get_by_role("heading", name="KPIs", exact=True)).to_be_visible()

    # Four charts, drawn as SVG in the page, with their numbers printed.
    charts = page.locator("figure.chart svg.kpi-chart")
    await expect(charts).to_have_count(4)
    for index in range(4):
        box = await charts.nth(index).bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
    assert await funnel_numbers(page) == [2, 3, 4, 6]
    await expect(page.locator("#kpi-leads_generated .kpi-value")).to_have_text("6")
    # The source written as markup is a label of the sources chart, as text.
    sources = page.locator("#chart-sources svg")
    await expect(sources).to_contain_text(SCRIPT)
    await page.screenshot(path=str(SHOTS / "kpis.png"), full_page=True)

    # Another pool through the form: the funnel and the tiles follow.
    await page.select_option("#pool", "EMEA AE")
    async with page.expect_navigation():
        await page.click("button:has-text('Apply')")
    assert "pool=EMEA+AE" in page.url
    assert await funnel_numbers(page) == [1, 1, 1, 2]
    await expect(page.locator("#kpi-leads_generated .kpi-value")).to_have_text("2")
    await expect(page.locator("#kpi-scope")).to_contain_text("pool EMEA AE")
    await page.screenshot(path=str(SHOTS / "kpis-pool.png"), full_page=True)

    # A phone's width: one column, nothing wider than the screen.
    await page.set_viewport_size({"width": 420, "height": 900})
    await page.goto(f"{stack.base_url}/admin/kpis")
    await page.screenshot(path=str(SHOTS / "kpis-narrow.png"), full_page=True)
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0

    assert refused == []
    await context.close()

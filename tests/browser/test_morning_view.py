"""A person's morning: sign in to Airflow, open the morning view, read the days, filter, page, and
follow a day to its DAG run. Screenshots go to $KASSEBRO_ARTIFACTS (default .artifacts/screenshots)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Stack


@pytest.fixture(scope="module")
def page(browser, stack: Stack) -> Iterator[object]:
    """A signed-in page: through Airflow's login form, as a person does."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{stack.url}/")
    page.wait_for_url(re.compile(r"/auth/login"))
    page.fill("input[name=username]", stack.user)
    page.fill("input[name=password]", stack.password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)
    yield page
    context.close()


def _cell(page, vendor: str, day) -> object:
    return page.locator(f'tr[data-vendor="{vendor}"] td[data-day="{day.isoformat()}"]')


def test_the_morning_view_shows_each_days_state(page, stack: Stack, artifacts: Path) -> None:
    page.goto(f"{stack.url}/kassebro/morning")
    assert page.title() == "kassebro: the morning view"
    legend = page.locator("ul.legend").inner_text()
    for label in ("Posted", "Parked for approval", "Waiting for data", "Held back by validation", "Failed",
                  "Reconciliation finding", "Not yet due"):  # fmt: skip
        assert label in legend
    assert page.locator("tbody tr").count() == 7  # the seven demo vendors

    posted = _cell(page, "cafe_solsiden", stack.day(3))
    assert posted.get_attribute("data-state") == "posted"
    assert posted.get_attribute("title").startswith(f"cafe_solsiden {stack.day(3)}: posted, voucher ")
    assert posted.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(26, 127, 55)"  # green
    assert posted.locator("a.g").inner_text() == "✓"  # a mark, not only a colour

    held = _cell(page, "cafe_solsiden", stack.day(2))
    assert held.get_attribute("data-state") == "held_back"
    assert "held back by validation (" in held.get_attribute("title") and "receipt_balances" in held.get_attribute(
        "title"
    )
    assert held.locator("a.g").inner_text() == "!"

    found = _cell(page, "cafe_solsiden", stack.day(1))
    assert found.get_attribute("data-state") == "finding"
    assert "the journal does not know as booked" in found.get_attribute("title")
    assert _cell(page, "cafe_solsiden", stack.day(4)).get_attribute("data-state") == "blank"  # before enabled since
    assert _cell(page, "kiosk_torget", stack.day(2)).get_attribute("data-state") == "waiting"  # never run
    assert page.locator('tr[data-vendor="cafe_solsiden"] svg.spark polyline, '
                        'tr[data-vendor="cafe_solsiden"] svg.spark circle').count() >= 1  # fmt: skip
    page.screenshot(path=str(artifacts / "morning-view.png"), full_page=True)

    held.hover()  # the day's details and links show on hover (and on keyboard focus)
    pop = held.locator(".pop")
    assert pop.is_visible() and "receipt_balances" in pop.inner_text()
    page.screenshot(path=str(artifacts / "morning-view-held-back.png"))
    with page.context.expect_page() as report_tab:
        pop.locator("a.report").click()
    report = report_tab.value
    report.wait_for_load_state()
    assert "receipt_balances" in report.content() and "FAIL" in report.content()
    report.close()


def test_filters_and_paging_narrow_the_rows(page, stack: Stack, artifacts: Path) -> None:
    page.goto(f"{stack.url}/kassebro/morning")
    page.select_option("select[name=ledger]", "fiken")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"ledger=fiken"))
    assert page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.vendor)") == ["kiosk_torget"]

    page.goto(f"{stack.url}/kassebro/morning")
    page.select_option("select[name=state]", "held_back")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"state=held_back"))
    assert page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.vendor)") == ["cafe_solsiden"]
    page.screenshot(path=str(artifacts / "morning-view-held-back-filter.png"), full_page=True)

    page.goto(f"{stack.url}/kassebro/morning?per_page=3")
    first = page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.vendor)")
    assert "page 1 of 3" in page.locator("nav.pages").inner_text()
    page.click("nav.pages a[rel=next]")
    page.wait_for_url(re.compile(r"page=2"))
    second = page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.vendor)")
    assert len(first) == len(second) == 3 and not set(first) & set(second)
    assert "page 2 of 3" in page.locator("nav.pages").inner_text()
    page.screenshot(path=str(artifacts / "morning-view-page-2.png"), full_page=True)


def test_a_cell_opens_its_dag_run(page, stack: Stack, artifacts: Path) -> None:
    """From the Browse menu's page (the view in Airflow's frame) to the run that posted the day."""
    page.goto(f"{stack.url}/plugin/kassebro_morning")
    frame = page.frame_locator("iframe")
    cell = frame.locator(f'tr[data-vendor="cafe_solsiden"] td[data-day="{stack.day(3).isoformat()}"]')
    cell.locator("a.g").wait_for()
    page.screenshot(path=str(artifacts / "morning-view-in-airflow.png"))
    run_id = stack.runs["vendor_cafe_solsiden"]["run_id"]
    assert (
        cell.locator("a.g")
        .get_attribute("href")
        .endswith("/dags/vendor_cafe_solsiden/runs/" + run_id.replace(":", "%3A").replace("+", "%2B"))
    )
    cell.locator("a.g").click()  # target _top: the whole window goes to the run
    page.wait_for_url(re.compile(r"/dags/vendor_cafe_solsiden/runs/"))
    page.get_by_text(run_id).first.wait_for()
    page.screenshot(path=str(artifacts / "dag-run.png"))

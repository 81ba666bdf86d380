"""The pages in a real browser: Debian's chromium (/usr/bin/chromium) driven by playwright, with no
browser of playwright's own. What is asserted is what a person sees: elements visible, a dialog
inside the viewport, its stacks readable, no page wider than a phone. Screenshots are kept in
./screenshots (gitignored; REPRO_SCREENSHOTS=DIR puts them elsewhere).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import report
from harness.cell import Cell, Options, run_cell
from harness.outputs.badges import badge
from harness.record import record_order
from report_records import delta_history, hang_with_workers, wrangler_history

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(os.environ.get("REPRO_SCREENSHOTS") or ROOT / "screenshots")
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not at /usr/bin/chromium (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright package is not installed (pip install -e '.[dev]')")
    with sync_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The records of tests/report_records.py and a hang of the synthetic bug run by the real engine
    (its stacks are real), written as the report writes them."""
    from conftest import FAULT_REPROS

    before = os.environ.get("REPRO_PATH")
    os.environ["REPRO_PATH"] = str(FAULT_REPROS)
    try:
        hang = run_cell(Cell("synthetic-hang", "trigger", "current"), Options(attempts=1, control_attempts=0))
        hang["expected"] = ["present"]
        records = sorted(delta_history() + wrangler_history() + [hang_with_workers(), hang], key=record_order)
        out = tmp_path_factory.mktemp("site")
        report.write_all(records, out, None)
    finally:
        os.environ.pop("REPRO_PATH") if before is None else os.environ.update(REPRO_PATH=before)
    SHOTS.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=DESKTOP)
    yield context.new_page()
    context.close()


def in_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    view = page.viewport_size
    return box is not None and box["x"] >= 0 and box["y"] >= 0 and \
        box["x"] + box["width"] <= view["width"] and box["y"] + box["height"] <= view["height"]


def open_delta(page, site):
    page.goto((site / "index.html").as_uri())
    page.get_by_role("link", name="delta-already-borrowed").first.click()
    page.wait_for_url("**/bugs/delta-already-borrowed.html")


def grid_cell(page, pins: str, python: str):
    """The grid cell of a release row and a Python column."""
    pythons = page.locator("table.grid thead th").all_inner_texts()
    row = page.locator("table.grid tbody tr", has=page.locator(f"th:text-is('{pins}')"))
    return row.locator("td").nth(pythons.index(f"Python {python}") - 2)


def test_the_index_shows_every_bug_at_a_glance(page, site):
    page.goto((site / "index.html").as_uri())
    glance = page.locator("table.bugs tbody tr")
    assert glance.count() == 4
    delta = page.locator("table.bugs tr[data-bug='delta-already-borrowed']")
    assert delta.is_visible() and in_viewport(page, delta)
    said = badge("delta-already-borrowed", delta_history())  # the badge JSON's words, on the page
    assert delta.locator(".badge").inner_text().split("\n") == [said["label"], said["message"]]
    assert delta.locator(".newest").inner_text().startswith(
        "deltalake 1.6.6: absent on Python 3.10.13, 3.11.7, 3.12.1, 3.13.0")
    assert page.locator("footer .run").inner_text().count("ci-runner") == 1
    page.screenshot(path=str(SHOTS / "index.png"), full_page=True)


def test_the_borrow_bug_page_shows_its_four_transitions(page, site):
    open_delta(page, site)
    assert page.locator("h1").inner_text() == "delta-already-borrowed"
    row = page.locator("table.timeline tr[data-python='3.11.7']")
    events = row.locator(".event")
    assert events.all_inner_texts() == ["present", "fixed", "came back", "fixed"]
    assert all(events.nth(i).is_visible() for i in range(4))
    headers = page.locator("table.timeline thead th.point .version").all_inner_texts()
    assert headers == ["0.20.1", "0.23.2", "0.25.2", "1.1.0", "1.1.2", "1.6.6"]
    # The red band of 0.25.2 .. 1.1.0 is drawn (a pseudo-element: its computed colour and width).
    band = row.locator("td.slot").nth(headers.index("1.1.0")).evaluate(
        "td => { const s = getComputedStyle(td, '::before'); return [s.backgroundColor, s.width]; }")
    assert band[0] == "rgb(241, 174, 181)" and float(band[1].rstrip("px")) > 10
    upstream = page.get_by_role("link", name="delta-io/delta-rs#3101")
    assert upstream.is_visible() and upstream.get_attribute("href").endswith("/delta-io/delta-rs/issues/3101")
    page.screenshot(path=str(SHOTS / "bug-delta-already-borrowed.png"), full_page=True)


def test_a_cell_opens_its_dialog_in_view_by_click_and_by_keyboard(page, site):
    open_delta(page, site)
    cell = grid_cell(page, "deltalake==0.25.2", "3.11")
    cell.scroll_into_view_if_needed()
    cell.click()
    dialog = page.locator("dialog[open]")
    assert dialog.count() == 1 and dialog.is_visible() and in_viewport(page, dialog)
    assert "deltalake==0.25.2" in dialog.locator("h2").inner_text()
    exception = dialog.get_by_text("RuntimeError: Already borrowed")
    assert exception.is_visible() and in_viewport(page, exception)
    assert dialog.get_by_text("installed", exact=True).is_visible()
    page.screenshot(path=str(SHOTS / "dialog-delta-already-borrowed.png"))
    page.keyboard.press("Escape")
    assert page.locator("dialog[open]").count() == 0
    for key in ("Enter", " "):
        cell.focus()
        page.keyboard.press(key)
        assert page.locator("dialog[open]").is_visible(), key
        page.locator("dialog[open]").get_by_role("button", name="Close").click()
        assert page.locator("dialog[open]").count() == 0
    # A point of the timeline opens the same dialog.
    page.locator("table.timeline tr[data-python='3.11.7'] button.dot").nth(4).click()
    assert "deltalake==1.1.2" in page.locator("dialog[open] h2").inner_text()


def test_a_hang_shows_the_stacks_of_its_child(page, site):
    page.goto((site / "bugs" / "synthetic-hang.html").as_uri())
    page.locator("td.cell[data-verdict='present']").click()
    dialog = page.locator("dialog[open]")
    assert dialog.is_visible() and in_viewport(page, dialog)
    stacks = dialog.locator("details.stacks").first
    assert stacks.locator("summary").inner_text().startswith("stacks of the child (pid ")
    text = stacks.locator("pre")
    text.scroll_into_view_if_needed()
    assert text.is_visible() and in_viewport(page, text.locator("xpath=..").locator("summary"))
    assert "in deadlock" in text.inner_text()  # the frame of synthetic_hang.py that never returns
    page.screenshot(path=str(SHOTS / "dialog-hang-stacks.png"))


def test_the_forked_worker_has_its_own_stacks(page, site):
    page.goto((site / "bugs" / "lancedb-fork-hang.html").as_uri())
    page.locator("td.cell[data-verdict='present']").click()
    worker = page.locator("dialog[open] details.stacks", has_text="forked worker (pid 5328)")
    worker.scroll_into_view_if_needed()
    assert worker.locator("pre").is_visible() and "PyThread_acquire_lock_timed" in worker.locator("pre").inner_text()


def test_readable_on_a_narrow_screen(browser, site):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2)
    page = context.new_page()
    try:
        page.goto((site / "index.html").as_uri())
        badge = page.locator("table.bugs tr[data-bug='delta-already-borrowed'] .badge")
        badge.scroll_into_view_if_needed()
        assert badge.is_visible() and in_viewport(page, badge)  # the glance is blocks, not a clipped table
        page.screenshot(path=str(SHOTS / "index-narrow.png"))
        open_delta(page, site)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px screen"
        cell = grid_cell(page, "deltalake==0.20.1", "3.11")
        cell.scroll_into_view_if_needed()
        cell.click()
        dialog = page.locator("dialog[open]")
        assert dialog.is_visible() and in_viewport(page, dialog)
        assert dialog.get_by_role("button", name="Close").is_visible()
        page.screenshot(path=str(SHOTS / "dialog-narrow.png"))
    finally:
        context.close()

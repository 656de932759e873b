"""The hostsim console in a real browser: Debian's Chromium, headless, driven by Playwright.

``hostsim run --console`` and a real agent (``smscmd run`` on its pty) as child
processes; the page is opened with the API's credentials, a command is sent from
its form by keyboard alone (Tab to the form, Enter submits) and seen to go
``queued → sent → delivered`` with the agent's reply appearing, a reset is
triggered from the page and the modem's state is seen to change, and the page is
checked at 1280×800 and at a phone's 390×844 (no sideways scrolling, the form
inside the screen). One browser launch for the module.

Screenshots (test artifacts, not in git): ``console-1280x800.png`` and
``console-390x844.png`` in ``$SMSCMD_ARTIFACTS``, default ``tests/artifacts/``.

Chromium is ``/usr/bin/chromium`` (tests/console/install; Playwright's own browser
download is never used). Without it or without Playwright the test is skipped with
the reason, and with ``CI=true`` it fails.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from harness import running_agent, running_hostsim

from hostsim.modem.faults import fault_fields

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("SMSCMD_ARTIFACTS") or Path(__file__).parent / "artifacts")
INSTALL = "bash tests/console/install"
#: Each wait on the page (ms): the agent's start and reply included.
WAIT_MS = 30_000
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}


def _missing(reason: str) -> None:
    reason = f"{reason} (as root: `{INSTALL}`)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return CHROMIUM


async def _fits(page: Any, width: int) -> None:
    """Nothing wider than the viewport: no sideways scrolling; the send form inside it."""
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"page is {scroll_width} px wide at {width}"
    box = await page.locator("#send-payload").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


@pytest.mark.timeout(150)
@pytest.mark.async_timeout(130)
async def test_the_console_drives_a_real_agent_in_chromium(chromium: Path, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    async with (
        running_hostsim(tmp_path, "--console", "--seed", "7") as ready,
        running_agent(tmp_path, ready["sims"][0]["link"]),
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            width, height = VIEWPORTS["desktop"]
            context = await browser.new_context(
                viewport={"width": width, "height": height},
                http_credentials={
                    "username": ready["account_sid"],
                    "password": ready["auth_token"],
                },
            )
            page = await context.new_page()
            elsewhere: list[str] = []
            page.on(
                "request",
                lambda r: None if r.url.startswith(ready["api"] + "/") else elsewhere.append(r.url),
            )
            await page.goto(ready["console"])
            await expect(page.locator("body")).to_have_attribute("data-ready", "true")
            await expect(page.locator("#connection")).to_have_text("live")
            sim = page.locator("#sim-sim0")
            await expect(sim.locator(".state")).to_have_text("ready")
            # Every field of every form (the fault plan's too) has its label.
            unlabelled = await page.evaluate(
                "[...document.querySelectorAll('input, select, textarea')]"
                ".filter((e) => e.labels.length === 0).map((e) => e.id)"
            )
            assert unlabelled == []
            assert await page.locator("#plan-fields input").count() == len(fault_fields())
            # The agent brought the modem up: text mode, and its commands on the line.
            await expect(sim.locator(".mode")).to_contain_text("text", timeout=WAIT_MS)
            log = page.locator("#traffic-sim0")
            await expect(log).to_contain_text("→ AT+CMGF=1", timeout=WAIT_MS)

            # Keyboard only: Tab to the payload field, type, Enter submits.
            for _ in range(10):
                await page.keyboard.press("Tab")
                if await page.evaluate("document.activeElement.id") == "send-payload":
                    break
            else:
                raise AssertionError("Tab never reached the payload field")
            await page.keyboard.type("ping: browser")
            await page.keyboard.press("Enter")
            await expect(page.locator("#send-form .result")).to_contain_text("queued")
            row = page.locator("#commands tbody tr", has_text="ping: browser")
            await expect(row.locator(".history")).to_have_text(
                "queued → sent → delivered", timeout=WAIT_MS
            )
            reply = page.locator("#commands tbody tr", has_text="pong: browser")
            await expect(reply.locator(".status")).to_have_text("received", timeout=WAIT_MS)
            await expect(log).to_contain_text("→ AT+CMGS=")
            await _fits(page, width)
            await page.evaluate("window.scrollTo(0, 0)")
            await page.screenshot(path=ARTIFACTS / "console-1280x800.png")

            # A reset from the page: the SIM is not ready for a while, then the modem is.
            await page.locator("#fault-sim").select_option("sim0")
            await page.locator("#control-reset-not_ready_seconds").fill("1.5")
            await page.locator('form[data-control="reset"] button').click()
            await expect(sim.locator(".state")).to_have_text("booting")
            await expect(page.locator("#fault-result")).to_contain_text("done")
            await expect(sim.locator(".state")).to_have_text("ready", timeout=WAIT_MS)
            await expect(log).to_contain_text("← RDY")

            width, height = VIEWPORTS["phone"]
            await page.set_viewport_size({"width": width, "height": height})
            await _fits(page, width)
            await page.evaluate("window.scrollTo(0, 0)")
            await page.screenshot(path=ARTIFACTS / "console-390x844.png")
            assert elsewhere == [], elsewhere
            await context.close()
        finally:
            await browser.close()

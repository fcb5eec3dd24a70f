"""The console in a real browser (Playwright driving Debian's Chromium, headless): log in, a signed webhook
arrives, the suggestion appears without a reload, `1` sends it, and the platform's receiver gets it; a review's
reply draft is edited on the reviews page and published.

No browser is downloaded: Chromium comes from `apt-get install chromium` (CI's .ci/run does it). Locally
the test skips, with the reason, when /usr/bin/chromium or Playwright is missing; under CI (or with
CSBOT_REQUIRE_BROWSER=1, which .ci/run sets) it fails instead."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from csbot.app import make_app
from csbot.clock import FrozenClock
from csbot.library import LibrarySet
from csbot.match import Matcher
from tests.conftest import Receiver, Signer, make_settings, message_event
from tests.console_support import PASSWORD, add_user

CHROMIUM = Path(os.environ.get("CSBOT_CHROMIUM", "/usr/bin/chromium"))


def _browser_or_skip() -> Any:
    problem = None
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        problem = "Playwright for Python is not installed (pip install -e '.[test]')"
    if problem is None and not CHROMIUM.exists():
        problem = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if problem:
        if os.environ.get("CI") or os.environ.get("CSBOT_REQUIRE_BROWSER"):
            pytest.fail(problem + " (CI must run the browser test)")
        pytest.skip(problem)
    return async_playwright


@dataclass
class Console:
    """The app on a real port, a client for its API and webhooks, and a headless Chromium; agent xiaomei exists."""

    server: TestServer
    client: TestClient[Any, Any]
    browser: Any

    @property
    def base(self) -> str:
        return str(self.server.make_url(""))


@pytest.fixture
async def console(sqlite_url: str, receiver: Receiver, clock: FrozenClock, knowledge: tuple[LibrarySet, Matcher],
                  aiohttp_server: Callable[..., Any]) -> AsyncIterator[Console]:
    async_playwright = _browser_or_skip()
    libraries, matcher = knowledge
    server: TestServer = await aiohttp_server(make_app(make_settings(sqlite_url, receiver.url), clock=clock,
                                                       libraries=libraries, matcher=matcher))
    client: TestClient[Any, Any] = TestClient(server)
    await client.start_server()
    try:
        await add_user(client, "xiaomei")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                               args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            try:
                yield Console(server, client, browser)
            finally:
                await browser.close()
    finally:
        await client.close()


async def _logged_in(browser: Any, base: str, path: str) -> Any:
    page = await browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    await page.goto(base + path)  # not logged in: the login form, then back here
    await page.fill("input[name=name]", "xiaomei")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#login")
    await page.wait_for_url(base + path)
    return page


async def test_agent_accepts_a_live_suggestion_with_one_key(console: Console, receiver: Receiver, clock: FrozenClock,
                                                            sign: Signer, tmp_path: Path) -> None:
    client = console.client
    page = await _logged_in(console.browser, console.base, "/console")
    await page.wait_for_selector("#live.on", timeout=10_000)  # the WebSocket is up
    assert await page.locator("#queue-empty").is_visible()

    body, headers = sign(message_event("亲 在吗？能便宜点吗", nick="小王", message_id="m-browser",
                                       sent_at=clock.now().isoformat()))
    resp = await client.post("/webhooks/generic", data=body, headers=headers)
    answer = await resp.json()
    assert resp.status == 200 and answer["action"] == "suggested"
    best = answer["suggestions"][0]

    # No reload: the socket says "changed", the page fetches the queue and opens the conversation.
    first = page.locator("#suggestions li").first
    await first.wait_for(timeout=10_000)
    assert await page.locator("#queue .item .nick").first.inner_text() == "小王"
    assert best["text"] in await first.inner_text()
    await page.screenshot(path=str(tmp_path / "console-suggestion.png"), full_page=True)

    await page.keyboard.press("1")
    (delivered,) = await receiver.wait_for(1)
    assert delivered["text"] == best["text"] and delivered["in_reply_to"] == "m-browser"
    await page.locator("#queue-empty").wait_for(state="visible", timeout=10_000)
    await page.screenshot(path=str(tmp_path / "console-sent.png"), full_page=True)
    assert (tmp_path / "console-sent.png").stat().st_size > 1000
    assert "m-browser" in json.dumps(receiver.received, ensure_ascii=False)


async def test_agent_edits_and_publishes_a_review_reply(console: Console, receiver: Receiver, sign: Signer,
                                                        tmp_path: Path) -> None:
    review = {"id": "rv-browser", "rating": 2, "text": "杯子收到就碎了一个", "buyer": {"id": "b-1", "nick": "小王"}}
    body, headers = sign({"type": "review.created", "shop": "demo", "review": review})
    answer = await (await console.client.post("/webhooks/generic", data=body, headers=headers)).json()
    draft = answer["reply"]["draft"]
    assert answer["reply"]["status"] == "pending" and answer["case_id"] is not None

    page = await _logged_in(console.browser, console.base, "/console/reviews")
    card = page.locator("#reviews li.review").first
    await card.wait_for(timeout=10_000)
    assert "杯子收到就碎了一个" in await card.inner_text()
    assert await card.locator("textarea.draft").input_value() == draft
    edited = draft + "新杯子今天已经寄出。"
    await card.locator("textarea.draft").fill(edited)
    await card.locator("button.publish").click()
    (published,) = await receiver.wait_for(1)
    assert (published["type"], published["review_id"], published["text"]) == ("review.reply", "rv-browser", edited)
    await page.locator("#reviews-empty").wait_for(state="visible", timeout=10_000)  # none pending now
    await page.select_option("#f-status", "sent")
    await page.click("#filters button[type=submit]")
    await page.locator("#reviews li.review blockquote.reply").wait_for(timeout=10_000)
    assert await page.locator("#reviews li.review blockquote.reply").inner_text() == edited
    await page.screenshot(path=str(tmp_path / "reviews-sent.png"), full_page=True)

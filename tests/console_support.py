"""Helpers for the console tests: accounts in the real database, and logging in through the real form."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from csbot.console import auth
from csbot.console import repo as console_repo
from csbot.keys import clock_key, db_key

Client = TestClient[Any, Any]
PASSWORD = "correct horse battery"


async def add_user(client: Client, name: str, role: str = "agent", password: str = PASSWORD) -> None:
    async with client.app[db_key].transaction() as tx:
        await console_repo.add_user(tx, name=name, role=role, password_hash=auth.hash_password(password),
                                    now=client.app[clock_key].now())


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def csrf_meta(html: str) -> str:
    match = re.search(r'"csrf": "([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def login(client: Client, name: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns the session's CSRF token (read from the console page)."""
    page = await client.get("/console/login")
    token = hidden(await page.text(), "csrf_token")
    resp = await client.post("/console/login", data={"name": name, "password": password, "csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 303, await resp.text()
    console = await client.get("/console", headers={"Accept": "text/html"})
    assert console.status == 200
    return csrf_meta(await console.text())

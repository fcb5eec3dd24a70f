"""Console login, sessions, CSRF, roles and API tokens, through HTTP against the real app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from csbot.console import auth
from csbot.keys import db_key
from csbot.store.models import AuthSession, User
from tests.conftest import AUTH, Signer, message_event
from tests.console_support import PASSWORD, Client, add_user, hidden, login


async def test_passwords_are_stored_as_argon2_hashes(client: Client) -> None:
    await add_user(client, "xiaomei")
    async with client.app[db_key].read() as tx:
        user = (await tx.execute(User.__table__.select())).one()
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


async def test_console_redirects_to_login_and_api_is_401_without_credentials(client: Client) -> None:
    resp = await client.get("/console", headers={"Accept": "text/html"}, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/console/login?next=")
    for path in ("/api/queue", "/api/kpis", "/console/ws", "/api/learn/proposals"):
        assert (await client.get(path)).status == 401, path
    assert (await client.get("/console/kpis", allow_redirects=False)).status == 401  # not a browser: no redirect
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/console/login")).status == 200
    assert (await client.get("/console/static/console.js")).status == 200
    assert (await client.get("/metrics")).status == 200  # public by default ([console] metrics_public)


async def test_login_sets_a_strict_httponly_session_cookie(client: Client) -> None:
    await add_user(client, "xiaomei")
    page = await client.get("/console/login")
    token = hidden(await page.text(), "csrf_token")
    wrong = await client.post("/console/login", data={"name": "xiaomei", "password": "nope-nope", "csrf_token": token})
    assert wrong.status == 401 and "csbot_session" not in wrong.cookies
    unknown = await client.post("/console/login", data={"name": "ghost", "password": PASSWORD, "csrf_token": token})
    assert unknown.status == 401
    resp = await client.post("/console/login", data={"name": "xiaomei", "password": PASSWORD, "csrf_token": token,
                                                     "next": "https://evil.example/"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console"  # no open redirect
    cookie = resp.cookies["csbot_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    async with client.app[db_key].read() as tx:
        stored = (await tx.execute(AuthSession.__table__.select())).one()
    assert stored.token_hash == auth.token_hash(cookie.value) and cookie.value not in stored.token_hash
    page = await client.get("/console", headers={"Accept": "text/html"})
    assert page.status == 200 and "xiaomei" in await page.text()


async def test_login_form_needs_its_csrf_token(client: Client) -> None:
    await add_user(client, "xiaomei")
    await client.get("/console/login")
    resp = await client.post("/console/login", data={"name": "xiaomei", "password": PASSWORD, "csrf_token": "forged"})
    assert resp.status == 403 and (await resp.json())["error"] == "forbidden"


async def test_session_posts_need_the_csrf_token(client: Client, sign: Signer) -> None:
    await add_user(client, "xiaomei")
    csrf = await login(client, "xiaomei")
    body, headers = sign(message_event("能便宜点吗"))
    answer = await (await client.post("/webhooks/generic", data=body, headers=headers)).json()
    sid = answer["suggestions"][0]["id"]
    # A cross-site form or fetch rides on the cookie but cannot know the token.
    assert (await client.post(f"/api/suggestions/{sid}/accept")).status == 403
    assert (await client.post(f"/api/suggestions/{sid}/accept", headers={"X-CSRF-Token": "guess"})).status == 403
    resp = await client.post(f"/api/suggestions/{sid}/accept", headers={"X-CSRF-Token": csrf})
    assert resp.status == 200
    conv = (await (await client.get("/api/conversations")).json())["conversations"][0]
    detail = await (await client.get(f"/api/conversations/{conv['id']}")).json()
    assert detail["messages"][-1]["author"] == "agent"
    async with client.app[db_key].read() as tx:
        from csbot.store.models import Suggestion

        decided = await tx.get_one(Suggestion, sid)
    assert decided.decided_by == "xiaomei"  # the feedback names the agent


async def test_logout_ends_the_session(client: Client) -> None:
    await add_user(client, "xiaomei")
    csrf = await login(client, "xiaomei")
    assert (await client.post("/console/logout", data={"csrf_token": "x"}, allow_redirects=False)).status == 403
    resp = await client.post("/console/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    client.session.cookie_jar.clear()
    assert (await client.get("/api/queue")).status == 401


async def test_roles_agent_cannot_see_or_approve_proposals(client: Client) -> None:
    await add_user(client, "agent1", "agent")
    await add_user(client, "boss", "supervisor")
    csrf = await login(client, "agent1")
    assert (await client.get("/api/learn/proposals")).status == 403
    resp = await client.post("/api/learn/proposals/approve", json={"ids": ["x"]}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 403
    assert (await client.get("/console/supervisor", headers={"Accept": "text/html"})).status == 403
    client.session.cookie_jar.clear()
    await login(client, "boss")
    assert (await client.get("/api/learn/proposals")).status == 200
    assert (await client.get("/console/supervisor", headers={"Accept": "text/html"})).status == 200


async def test_configured_api_token_still_works_and_user_tokens_act_as_the_user(client: Client) -> None:
    assert (await client.get("/api/queue", headers=AUTH)).status == 200
    assert (await client.get("/api/learn/proposals", headers=AUTH)).status == 200  # the operator's token
    await add_user(client, "crm-bot", "agent")
    token = auth.new_token()
    async with client.app[db_key].transaction() as tx:
        from csbot.console import repo as console_repo

        user = await console_repo.user_by_name(tx, "crm-bot")
        assert user is not None
        await console_repo.add_api_token(tx, user_id=user.id, token_hash=auth.token_hash(token), label="crm",
                                         now=user.created_at)
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/queue", headers=bearer)).status == 200
    assert (await client.get("/api/learn/proposals", headers=bearer)).status == 403  # an agent's token
    assert (await client.get("/api/queue", headers={"Authorization": "Bearer nope"})).status == 401


def test_cli_users_add_and_token(tmp_path: Path) -> None:
    env = {"CSBOT_DB": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "csbot"]
    added = subprocess.run([*run, "users", "add", "laowang", "--role", "supervisor", "--password-stdin"],
                           input="a long password\n", capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert added.returncode == 0, added.stderr
    short = subprocess.run([*run, "users", "add", "x", "--password-stdin"], input="short\n", capture_output=True,
                           text=True, env=env, cwd=tmp_path, timeout=60)
    assert short.returncode == 2 and "8 characters" in short.stderr
    listed = subprocess.run([*run, "users", "list"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert "laowang" in listed.stdout and "supervisor" in listed.stdout
    token = subprocess.run([*run, "users", "token", "laowang"], capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=60)
    assert token.returncode == 0 and len(token.stdout.strip()) >= 40

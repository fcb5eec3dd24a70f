"""Command line: `csbot serve | send | match | eval | lint`. Arguments -> Settings -> the package."""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import logging
import os
import secrets
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from csbot import privacy
from csbot.calibrate import add_calibrate_command
from csbot.clock import SystemClock
from csbot.config import ConfigError, Settings, load_settings
from csbot.errors import SchemaOutdated

DEMO_FILE = Path(".csbot-demo.json")
EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
# Seconds requests in flight get after SIGTERM (aiohttp's default is 60). A webhook takes milliseconds, so
# this only cuts off a stuck client; the whole stop stays within a container runtime's usual 30 s.
SHUTDOWN_GRACE = 10.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, os.environ)
        return int(args.run(args, settings))
    except ConfigError as exc:
        print(f"csbot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _LibraryProblem as exc:
        print(f"csbot: the script library cannot be loaded:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except SchemaOutdated as exc:
        print(f"csbot: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS


class _LibraryProblem(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="csbot", description="Customer-service assistant for online shops.")
    parser.add_argument("--config", type=Path, default=None, help="csbot.toml (default: $CSBOT_CONFIG or ./csbot.toml)")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the webhook server")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("send", help="send a signed test message to a running server and show the answer")
    p.add_argument("text")
    p.add_argument("--shop", default="demo")
    p.add_argument("--conversation", default="c-demo")
    p.add_argument("--buyer", default="b-demo")
    p.add_argument("--nick", default="小王")
    p.add_argument("--url", help="default: http://HOST:PORT/webhooks/generic from the settings")
    p.set_defaults(run=cmd_send)

    p = sub.add_parser("match", help="explain how one message is normalised, matched and answered")
    p.add_argument("text")
    p.add_argument("--shop", default="demo")
    p.add_argument("--at", help="pretend it is this ISO time (e.g. 2026-11-23T23:30:00+08:00)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_match)

    p = sub.add_parser("eval", help="score the matcher on a labelled JSONL file")
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("lint", help="check the script library and templates")
    p.set_defaults(run=cmd_lint)

    add_calibrate_command(sub)

    p = sub.add_parser("reminders", help="list or cancel payment reminders and follow-ups")
    rsub = p.add_subparsers(required=True, metavar="ACTION")
    r = rsub.add_parser("list", help="what will be sent when, and why something was skipped")
    r.add_argument("--order", help="the platform's order id")
    r.add_argument("--status", choices=["pending", "claimed", "sent", "cancelled", "skipped"])
    r.add_argument("--limit", type=int, default=100)
    r.add_argument("--json", action="store_true")
    r.set_defaults(run=cmd_reminders_list)
    r = rsub.add_parser("cancel", help="cancel every pending reminder of an order")
    r.add_argument("order")
    r.add_argument("--shop", help="when the same order id exists in several shops")
    r.set_defaults(run=cmd_reminders_cancel)

    p = sub.add_parser("purge", help="delete finished conversations, replies and records older than a cutoff")
    p.add_argument("--older-than", required=True, type=duration, metavar="AGE", help="e.g. 180d or 12h")
    p.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    p.add_argument("--at", type=datetime.fromisoformat, help="count the age from this ISO time instead of now")
    p.set_defaults(run=cmd_purge)
    p = sub.add_parser("forget-buyer", help="erase one buyer's data (orders stay, anonymised, for accounting)")
    p.add_argument("buyer", help="the platform's buyer id")
    p.add_argument("--shop", help="needed when several shops are configured")
    p.set_defaults(run=cmd_forget_buyer)

    p = sub.add_parser("users", help="console accounts and API tokens")
    usub = p.add_subparsers(required=True, metavar="ACTION")
    u = usub.add_parser("add", help="create a user (or reset an existing user's role and password)")
    u.add_argument("name")
    u.add_argument("--role", choices=["agent", "supervisor"], default="agent")
    u.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    u.set_defaults(run=cmd_users_add)
    u = usub.add_parser("token", help="issue an API token acting as the user (printed once)")
    u.add_argument("name")
    u.add_argument("--label", default="")
    u.set_defaults(run=cmd_users_token)
    u = usub.add_parser("list", help="list users and roles")
    u.set_defaults(run=cmd_users_list)

    p = sub.add_parser("learn", help="propose library changes from agents' accept/edit/reject history")
    p.add_argument("--approve", nargs="+", metavar="ID", help="write these proposals into the library files")
    p.add_argument("--by", default=os.environ.get("USER", "cli"), help="who approves (recorded in the YAML)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_learn)

    p = sub.add_parser("db", help="the database schema: Alembic migrations")
    dsub = p.add_subparsers(required=True, metavar="ACTION")
    d = dsub.add_parser("upgrade", help="apply the pending migrations (all, or up to --revision)")
    d.add_argument("--revision", default="head")
    d.set_defaults(run=cmd_db_upgrade)
    d = dsub.add_parser("downgrade", help="revert migrations down to REVISION ('base' reverts them all)")
    d.add_argument("revision")
    d.set_defaults(run=cmd_db_downgrade)
    d = dsub.add_parser("current", help="the database's revision and the one this csbot needs")
    d.set_defaults(run=cmd_db_current)
    d = dsub.add_parser("check", help="exit 1 unless the database is at the revision this csbot needs")
    d.set_defaults(run=cmd_db_check)
    return parser


# --- serve -----------------------------------------------------------------------------------------


def _demo_credentials() -> dict[str, str]:
    """A per-checkout demo secret and API token, generated once, so a newcomer needs no setup."""
    if DEMO_FILE.is_file():
        data: dict[str, str] = json.loads(DEMO_FILE.read_text(encoding="utf-8"))
        return data
    data = {
        "webhook_secret": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        "api_token": secrets.token_urlsafe(24),
    }
    DEMO_FILE.touch(mode=0o600)
    DEMO_FILE.write_text(json.dumps(data), encoding="utf-8")
    return data


def _with_demo_credentials(settings: Settings) -> tuple[Settings, bool]:
    if settings.webhook_secret and settings.api_token:
        return settings, False
    demo = _demo_credentials()
    return replace(settings, webhook_secret=settings.webhook_secret or demo["webhook_secret"],
                   api_token=settings.api_token or demo["api_token"]), True


# Alembic (1.16+) logs the set-up of each of its plugins, APScheduler each job it adds and that it started:
# seven and three INFO lines at every start. The migrations' own lines ("Running upgrade …") stay.
QUIET_LOGGERS = ("alembic.runtime.plugins", "apscheduler.scheduler")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web
    from sqlalchemy.engine import make_url

    from csbot.app import make_app
    from csbot.web.middlewares import AccessLogger

    settings = replace(settings, host=args.host or settings.host, port=args.port or settings.port)
    settings, demo = _with_demo_credentials(settings)
    libraries, matcher = _load_matcher(settings)
    # The index and the imports live as long as the process: frozen, full collections (~0.1 s) stop walking them.
    gc.collect()
    gc.freeze()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in QUIET_LOGGERS:  # their INFO lines say nothing an operator acts on
        logging.getLogger(chatty).setLevel(logging.WARNING)
    privacy.install()  # phone numbers, addresses and names are masked in whatever reaches the log
    base = f"http://{settings.host}:{settings.port}"
    shown_db = make_url(settings.database_url).render_as_string(hide_password=True)  # the journal keeps this line
    print(f"csbot listening on {base}  (database: {shown_db})")
    print(f"  script library: {settings.library_dir}  ({matcher.trigger_count} triggers)")
    if demo:
        print(f"  demo credentials in {DEMO_FILE} (set CSBOT_WEBHOOK_SECRET and CSBOT_API_TOKEN in production)")
        print(f"  webhook secret: {settings.webhook_secret}")
        print(f"  API token:      {settings.api_token}")
    print("\nTry it from another terminal:")
    print('  csbot send "亲 在吗？能便宜点吗"')
    print(f'  curl -H "Authorization: Bearer {settings.api_token}" {base}/api/conversations\n', flush=True)
    # SIGTERM/SIGINT: stop listening, let requests in flight finish (at most SHUTDOWN_GRACE), then stop the
    # reminder beat and the outbox worker (app.py) and close the database; exit 0.
    web.run_app(make_app(settings, libraries=libraries, matcher=matcher), host=settings.host, port=settings.port,
                print=None, access_log_class=AccessLogger, shutdown_timeout=SHUTDOWN_GRACE)
    return EXIT_OK


# --- send ------------------------------------------------------------------------------------------


def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    import aiohttp

    from csbot.ingest.signatures import signed_headers

    settings, _ = _with_demo_credentials(settings)
    assert settings.webhook_secret is not None
    url = args.url or f"http://{settings.host}:{settings.port}/webhooks/generic"
    event = {
        "type": "message.created", "shop": args.shop, "conversation_id": args.conversation,
        "buyer": {"id": args.buyer, "nick": args.nick},
        "message": {"id": f"m-{uuid.uuid4().hex[:12]}", "text": args.text,
                    "sent_at": datetime.now().astimezone().isoformat(timespec="seconds")},
    }
    body = json.dumps(event, ensure_ascii=False).encode()
    headers = signed_headers(settings.webhook_secret, f"msg_{uuid.uuid4().hex}", int(time.time()), body)
    headers["content-type"] = "application/json"

    async def post() -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    try:
        status, answer = asyncio.run(post())
    except OSError as exc:
        print(f"csbot: cannot reach {url}: {exc}. Is `csbot serve` running?", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"HTTP {status}")
    print(json.dumps(answer, ensure_ascii=False, indent=2))
    return EXIT_OK if status == 200 else EXIT_PROBLEMS


# --- match / eval / lint ---------------------------------------------------------------------------


def _load_matcher(settings: Settings) -> tuple[Any, Any]:
    from csbot.library import LibraryError, load_libraries
    from csbot.match import Matcher

    try:
        libraries = load_libraries(settings.library_dir)
    except LibraryError as exc:
        raise _LibraryProblem("\n".join(exc.problems)) from None
    return libraries, Matcher(libraries)


def cmd_match(args: argparse.Namespace, settings: Settings) -> int:
    from csbot.match import Ranking
    from csbot.normalize import normalize
    from csbot.pipeline import variables_for
    from csbot.policy import Context, Signals, decide
    from csbot.replies import Renderer

    shop = settings.shop(args.shop)
    if shop is None:
        print(f"csbot: unknown shop {args.shop!r}; configured: {', '.join(sorted(settings.shops))}", file=sys.stderr)
        return EXIT_USAGE
    now = datetime.fromisoformat(args.at) if args.at else SystemClock().now()
    if now.tzinfo is None:
        print("csbot: --at needs a UTC offset, e.g. 2026-11-23T23:30:00+08:00", file=sys.stderr)
        return EXIT_USAGE
    libraries, matcher = _load_matcher(settings)
    normalized = normalize(args.text)
    ranking: Ranking = matcher.rank(normalized)
    locale = normalized.lang if normalized.lang in libraries.libraries else shop.locale
    top = ranking.top
    escalates = top is not None and libraries.intent(locale, top.intent).escalate
    decision = decide(Signals(ranking, matcher.would_auto_send(ranking), escalates, normalized.text),
                      shop, Context(), now)
    renderer = Renderer(settings.templates_dir)
    variables = variables_for(shop, None, locale, now)
    replies = [
        {"intent": intent, "text": renderer.render(locale, libraries.intent(locale, intent).replies[0],
                                                   variables | {"intent": intent}).text}
        for intent in (*decision.send, *decision.suggest)
    ]
    result = {
        "text": args.text, "normalized": normalized.text, "pinyin": normalized.pinyin, "lang": normalized.lang,
        "data": normalized.data,
        "candidates": [{"intent": c.intent, "score": round(c.score, 1), "trigger": c.trigger}
                       for c in ranking.candidates],
        "confident": top is not None, "abstain_reason": None if top else ranking.reason,
        "action": decision.action, "reason": decision.reason, "send": list(decision.send),
        "replies": replies,
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return EXIT_OK
    print(f"message:    {args.text}")
    data = "; a link, an email or a number was taken out: never sent automatically" if normalized.data else ""
    print(f"normalised: {normalized.text!r}  (pinyin: {normalized.pinyin!r}, language: {normalized.lang}{data})")
    print("candidates:")
    for i, c in enumerate(ranking.candidates, start=1):
        print(f"  {i}. {c.intent:<14} {c.score:5.1f}   via trigger {c.trigger!r}")
    if not ranking.candidates:
        print("  (none)")
    first = " (the first of two questions within the margin)" if ranking.reason == "first_question" else ""
    print(f"confident:  {top.intent + first if top else 'no (' + ranking.reason + ')'}")
    print(f"decision:   {decision.action} — {decision.reason}")
    for r in replies:
        label = "sent" if r["intent"] in decision.send else "suggest"
        print(f"  [{label} {r['intent']}] {r['text']}")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from csbot.evaluate import evaluate, format_report, read_labelled, report_json

    try:
        rows = read_labelled(args.file)
    except (OSError, ValueError) as exc:
        print(f"csbot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _, matcher = _load_matcher(settings)
    report = evaluate(matcher, rows)
    if args.json:
        print(json.dumps(report_json(report), ensure_ascii=False, indent=2))
    else:
        print(format_report(report))
    return EXIT_OK


def cmd_lint(args: argparse.Namespace, settings: Settings) -> int:
    from csbot.library.lint import lint
    from csbot.replies import Renderer

    problems = lint(settings.library_dir, Renderer(settings.templates_dir))
    for problem in problems:
        print(f"{problem.location}: {problem.message}")
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"ok: {settings.library_dir} and {settings.templates_dir} are clean")
    return EXIT_OK


# --- reminders -------------------------------------------------------------------------------------


def cmd_reminders_list(args: argparse.Namespace, settings: Settings) -> int:
    from csbot.reminders import repo as reminders_repo
    from csbot.store.db import Database
    from csbot.web.reminders import reminder_json

    async def fetch() -> list[dict[str, Any]]:
        db = await Database.open(settings.database_url)
        try:
            async with db.read() as tx:
                views = await reminders_repo.list_reminders(tx, order_external_id=args.order, status=args.status,
                                                            limit=args.limit)
        finally:
            await db.close()
        return [reminder_json(v) for v in views]

    rows = asyncio.run(fetch())
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    if not rows:
        print("no reminders")
    for r in rows:
        target = f"order {r['order_id']}" if r["order_id"] else f"conversation {r['conversation_id']}"
        why = f"  ({r['reason']})" if r["reason"] else ""
        print(f"{r['due_at']}  {r['status']:<9} {r['kind']:<19} stage {r['stage']}  {target}  buyer {r['buyer_id']}"
              f"{why}")
    return EXIT_OK


def cmd_reminders_cancel(args: argparse.Namespace, settings: Settings) -> int:
    from csbot.reminders import repo as reminders_repo
    from csbot.store.db import Database

    async def cancel() -> int | None:
        db = await Database.open(settings.database_url)
        try:
            async with db.transaction() as tx:
                return await reminders_repo.cancel_for_external_order(
                    tx, args.order, shop_id=args.shop, reason="cancelled_by_cli", now=SystemClock().now())
        finally:
            await db.close()

    cancelled = asyncio.run(cancel())
    if cancelled is None:
        print(f"csbot: no order {args.order!r}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"order {args.order}: {cancelled} pending reminder(s) cancelled")
    return EXIT_OK


# --- retention -------------------------------------------------------------------------------------


def duration(text: str) -> timedelta:
    """"180d" or "12h" (argparse turns the ValueError into a usage error naming the option)."""
    units = {"d": "days", "h": "hours"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) <= 0:
        raise ValueError(text)
    return timedelta(**{units[unit]: int(number)})


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    from csbot.store import retention
    from csbot.store.db import Database

    if args.at is not None and args.at.tzinfo is None:
        print("csbot: --at needs a UTC offset, e.g. 2026-11-23T23:30:00+08:00", file=sys.stderr)
        return EXIT_USAGE
    cutoff = (args.at or SystemClock().now()) - args.older_than

    async def run() -> dict[str, int]:
        db = await Database.open(settings.database_url)
        try:
            return await retention.run_purge(db, cutoff=cutoff, dry_run=args.dry_run)
        finally:
            await db.close()

    counts = asyncio.run(run())
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} (last activity before {cutoff.isoformat(timespec='seconds')}): "
          + (", ".join(f"{n} {table}" for table, n in sorted(counts.items())) or "nothing"))
    return EXIT_OK


def cmd_forget_buyer(args: argparse.Namespace, settings: Settings) -> int:
    from csbot.store import retention
    from csbot.store.db import Database

    shop = args.shop or (next(iter(settings.shops)) if len(settings.shops) == 1 else None)
    if shop is None:
        print(f"csbot: several shops configured ({', '.join(sorted(settings.shops))}): pass --shop", file=sys.stderr)
        return EXIT_USAGE

    async def run() -> retention.ForgetResult:
        db = await Database.open(settings.database_url)
        try:
            async with db.transaction() as tx:
                return await retention.forget_buyer(tx, shop_id=shop, external_id=args.buyer)
        finally:
            await db.close()

    result = asyncio.run(run())
    if not result.found:
        print(f"csbot: no buyer {args.buyer!r} in shop {shop!r}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"buyer {args.buyer} of shop {shop} forgotten: deleted "
          + ", ".join(f"{n} {table}" for table, n in sorted(result.deleted.items()))
          + f"; {result.orders_kept} order(s) kept without the buyer, for accounting")
    return EXIT_OK


# --- users and learning ----------------------------------------------------------------------------


def _read_password(from_stdin: bool) -> str | None:
    import getpass

    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    return first if getpass.getpass("again: ") == first else None


def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    from csbot.console import auth
    from csbot.console import repo as console_repo
    from csbot.store.db import Database

    password = _read_password(args.password_stdin)
    if password is None:
        print("csbot: the passwords differ", file=sys.stderr)
        return EXIT_USAGE
    try:
        hashed = auth.hash_password(password)
    except ValueError as exc:
        print(f"csbot: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def add() -> None:
        db = await Database.open(settings.database_url)
        try:
            async with db.transaction() as tx:
                await console_repo.add_user(tx, name=args.name, role=args.role, password_hash=hashed,
                                            now=SystemClock().now())
        finally:
            await db.close()

    asyncio.run(add())
    print(f"user {args.name} ({args.role}) saved")
    return EXIT_OK


def cmd_users_token(args: argparse.Namespace, settings: Settings) -> int:
    from csbot.console import auth
    from csbot.console import repo as console_repo
    from csbot.store.db import Database

    token = auth.new_token()

    async def issue() -> bool:
        db = await Database.open(settings.database_url)
        try:
            async with db.transaction() as tx:
                user = await console_repo.user_by_name(tx, args.name)
                if user is None:
                    return False
                await console_repo.add_api_token(tx, user_id=user.id, token_hash=auth.token_hash(token),
                                                 label=args.label, now=SystemClock().now())
                return True
        finally:
            await db.close()

    if not asyncio.run(issue()):
        print(f"csbot: no user {args.name!r} (csbot users add NAME first)", file=sys.stderr)
        return EXIT_PROBLEMS
    print(token)
    return EXIT_OK


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    from csbot.console import repo as console_repo
    from csbot.store.db import Database

    async def fetch() -> list[tuple[str, str, bool]]:
        db = await Database.open(settings.database_url)
        try:
            async with db.read() as tx:
                return [(u.name, u.role, u.disabled_at is None) for u in await console_repo.list_users(tx)]
        finally:
            await db.close()

    for name, role, active in asyncio.run(fetch()):
        print(f"{name:<24} {role:<10} {'active' if active else 'disabled'}")
    return EXIT_OK


def cmd_learn(args: argparse.Namespace, settings: Settings) -> int:
    from csbot.console import learn
    from csbot.store.db import Database

    libraries, _ = _load_matcher(settings)

    async def fetch() -> list[learn.Feedback]:
        db = await Database.open(settings.database_url)
        try:
            async with db.read() as tx:
                return await learn.history(tx)
        finally:
            await db.close()

    def locale_of(shop_id: str) -> str:
        shop = settings.shop(shop_id)
        return shop.locale if shop is not None else "zh-CN"

    proposals = learn.propose(asyncio.run(fetch()), libraries, locale_of)
    if args.approve:
        chosen = [p for p in proposals if p.id in set(args.approve)]
        missing = set(args.approve) - {p.id for p in chosen}
        if missing:
            print(f"csbot: not (or no longer) proposed: {', '.join(sorted(missing))}", file=sys.stderr)
            return EXIT_PROBLEMS
        try:
            changed = learn.apply(chosen, libraries, library_dir=settings.library_dir,
                                  templates_dir=settings.templates_dir, approved_by=args.by,
                                  today=SystemClock().now().date())
        except learn.LearnError as exc:
            print(f"csbot: {exc}", file=sys.stderr)
            return EXIT_PROBLEMS
        for path in changed:
            print(f"changed {path}")
        print("review with `git diff`, then restart csbot")
        return EXIT_OK
    if args.json:
        print(json.dumps([learn.proposal_json(p) for p in proposals], ensure_ascii=False, indent=2))
        return EXIT_OK
    if not proposals:
        print("no proposals yet")
    for p in proposals:
        print(f"{p.id}  {p.kind:<14} {p.locale}/{p.intent:<14} {p.text!r}  ({p.evidence}; {p.detail})")
    return EXIT_OK


# --- db --------------------------------------------------------------------------------------------


def _db_name(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def _migrate(settings: Settings, action: str, revision: str) -> int:
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import DatabaseError

    from csbot.store import schema

    run = schema.upgrade if action == "upgrade" else schema.downgrade
    try:
        before = asyncio.run(schema.current(settings.database_url))
        asyncio.run(run(settings.database_url, revision))
        after = asyncio.run(schema.current(settings.database_url))
    except CommandError as exc:
        print(f"csbot: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except DatabaseError as exc:  # the run is one transaction: nothing of it stayed
        print(f"csbot: the migration failed and changed nothing: {exc.orig}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"{_db_name(settings)}: {before or 'empty'} -> {after or 'empty'}"
          + ("" if before != after else " (nothing to do)"))
    return EXIT_OK


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    return _migrate(settings, "upgrade", args.revision)


def cmd_db_downgrade(args: argparse.Namespace, settings: Settings) -> int:
    return _migrate(settings, "downgrade", args.revision)


def cmd_db_current(args: argparse.Namespace, settings: Settings) -> int:
    from csbot.store import schema

    current = asyncio.run(schema.current(settings.database_url))
    state = "up to date" if current == schema.head() else "run `csbot db upgrade`"
    print(f"database: {_db_name(settings)}")
    print(f"current:  {current or 'empty (no migrations applied)'}")
    print(f"needed:   {schema.head()}  ({state})")
    return EXIT_OK


def cmd_db_check(args: argparse.Namespace, settings: Settings) -> int:
    from csbot.store import schema
    from csbot.store.db import Database

    async def check() -> None:
        db = await Database.open(settings.database_url, create=False)
        try:
            await schema.check(db)
        finally:
            await db.close()

    asyncio.run(check())  # SchemaOutdated: main() prints it, exit 1
    print(f"ok: {_db_name(settings)} is at {schema.head()}")
    return EXIT_OK

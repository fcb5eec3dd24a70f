"""Benchmark (issue 4): N pending reminders, M of them due at the same instant.

Measures the time until all M are in the outbox, duplicates (must be 0), and the ticking process's peak
memory, for a large and a small pending count, so the two can be compared (memory must not grow with
the number of pending rows: the ticker only ever holds one claimed batch).

    python benchmarks/reminders_bench.py                       # SQLite: 100k/10k vs 1k/1k... see --help
    python benchmarks/reminders_bench.py --db postgresql://postgres@127.0.0.1:5432/test

Each run seeds a fresh database in one process, then ticks in a fresh process (two tickers racing, as two
instances would), so the seeding's memory does not count. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # outside quiet hours
BUYERS_MAX = 10_000


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def seed(url: str, pending: int, due: int) -> None:
    from sqlalchemy import insert

    from csbot.store import repo
    from csbot.store.db import Database
    from csbot.store.models import Buyer, Order, Reminder

    db = await Database.open(url, auto_upgrade=True)  # a fresh database: the migrations create the schema
    buyers = min(BUYERS_MAX, max(due, 1))
    later = NOON + timedelta(days=1)
    async with db.transaction() as tx:
        await repo.sync_shops(tx, {"demo": "示例小店"})
        await tx.execute(insert(Buyer), [
            {"id": b + 1, "shop_id": "demo", "external_id": f"b-{b}", "nick": "小王", "created_at": NOON}
            for b in range(buyers)])
    for start in range(0, pending, 20_000):
        chunk = range(start, min(start + 20_000, pending))
        async with db.transaction() as tx:
            await tx.execute(insert(Order), [
                {"id": i + 1, "shop_id": "demo", "external_id": f"o-{i}", "buyer_id": i % buyers + 1,
                 "status": "created", "amount": "199.00", "items": [{"title": "羊毛围巾", "qty": 1}],
                 "ordered_at": NOON - timedelta(minutes=20), "auto_close_at": NOON + timedelta(days=2),
                 "first_seen_at": NOON, "updated_at": NOON} for i in chunk])
            await tx.execute(insert(Reminder), [
                {"shop_id": "demo", "order_id": i + 1, "buyer_id": i % buyers + 1, "kind": "payment", "stage": 1,
                 "template": "reminder_payment_1", "due_at": NOON if i < due else later, "status": "pending",
                 "attempts": 0, "created_at": NOON, "updated_at": NOON} for i in chunk])
    await db.close()


async def tick(url: str, tickers: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from csbot.clock import FrozenClock
    from csbot.config import Settings, TickerSettings
    from csbot.library import load_libraries
    from csbot.match import Matcher
    from csbot.pipeline import PipelineDeps
    from csbot.reminders.ticker import Ticker
    from csbot.replies import Renderer
    from csbot.store.db import Database
    from csbot.store.models import OutboxItem, Reminder

    settings = Settings(database_url=url)
    libraries = load_libraries(settings.library_dir)
    clock = FrozenClock(NOON)
    deps = PipelineDeps(settings=settings, libraries=libraries, matcher=Matcher(libraries),
                        renderer=Renderer(settings.templates_dir), clock=clock)
    dbs = [await Database.open(url, create=False) for _ in range(tickers)]
    workers = [Ticker(db, deps, TickerSettings()) for db in dbs]
    rss_before = rss_mib()
    started = time.perf_counter()
    results = await asyncio.gather(*(w.tick() for w in workers))
    elapsed = time.perf_counter() - started
    async with dbs[0].read() as tx:
        outbox = (await tx.execute(select(func.count(OutboxItem.id)))).scalar_one()
        sent = (await tx.execute(select(func.count(Reminder.id)).where(Reminder.status == "sent"))).scalar_one()
        distinct = (await tx.execute(select(func.count(func.distinct(Reminder.reply_id)))
                                     .where(Reminder.status == "sent"))).scalar_one()
        pending = (await tx.execute(select(func.count(Reminder.id)).where(Reminder.status == "pending"))).scalar_one()
    for db in dbs:
        await db.close()
    return {
        "seconds": round(elapsed, 2), "outbox_rows": outbox, "sent": sent, "duplicates": outbox - distinct,
        "still_pending": pending, "per_ticker_sent": [r.sent for r in results],
        "rss_before_tick_mib": round(rss_before, 1), "peak_rss_mib": round(rss_mib(), 1),
    }


def run_case(url_base: str, pending: int, due: int, tickers: int) -> dict[str, Any]:
    if url_base.startswith("sqlite"):
        folder = Path(tempfile.mkdtemp(prefix="csbot-bench-"))
        url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        cleanup = None
    else:
        url, cleanup = _fresh_pg(url_base)
    try:
        for phase in ("seed", "tick"):
            out = subprocess.run([sys.executable, __file__, "--phase", phase, "--url", url, "--pending", str(pending),
                                  "--due", str(due), "--tickers", str(tickers)],
                                 check=True, capture_output=True, text=True)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if cleanup:
            cleanup()
    return {"pending": pending, "due": due, **result}


def _fresh_pg(dsn: str) -> tuple[str, Any]:
    import asyncpg

    name = f"csbot_bench_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}", lambda: asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite", help="sqlite, or a postgresql:// DSN of a server to create a db on")
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000, help="pending count of the comparison run")
    parser.add_argument("--tickers", type=int, default=2, help="tickers racing on the same rows")
    parser.add_argument("--phase", choices=["seed", "tick"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "seed":
        asyncio.run(seed(args.url, args.pending, args.due))
        return
    if args.phase == "tick":
        print(json.dumps(asyncio.run(tick(args.url, args.tickers))))
        return
    big = run_case(args.db, args.pending, args.due, args.tickers)
    small = run_case(args.db, args.small, min(args.due, args.small), args.tickers)
    same_due = run_case(args.db, args.small * 0 + args.due, args.due, args.tickers) if args.small < args.due else None
    report = {"db": args.db.split("://")[0].split("+")[0], "large": big, "small": small, "same_due_small": same_due,
              "ratios": {
                  "peak_rss_large_vs_small": round(big["peak_rss_mib"] / small["peak_rss_mib"], 2),
                  "peak_rss_large_vs_same_due": None if same_due is None
                  else round(big["peak_rss_mib"] / same_due["peak_rss_mib"], 2),
                  "seconds_large_vs_same_due": None if same_due is None
                  else round(big["seconds"] / same_due["seconds"], 2),
              }}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

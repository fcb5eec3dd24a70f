"""Webhook ingest writes on PostgreSQL: csbot's store functions (SQLAlchemy 2 async) vs plain asyncpg.

    python benchmarks/bench_ingest_asyncpg.py [--ops 2000] [--repeat 3] [--pg DSN]

One "op" is the database work of one webhook that ends in suggestions, in one transaction: the inbound
idempotency row (INSERT … ON CONFLICT DO NOTHING RETURNING), the buyer and conversation upserts (ON CONFLICT
DO UPDATE RETURNING), superseding the conversation's pending suggestions, the inbound message, three
suggestions (one multi-row INSERT … RETURNING), and the stored response. "store" runs csbot's own functions
(`csbot.store.repo`) in `Database.transaction()`, exactly as `ingest/accept.py` and `pipeline.py` call them;
"asyncpg" runs the same statements as hand-written SQL with $n parameters on an asyncpg pool (prepared
statements cached, as asyncpg does by default). Matching, rendering and HTTP are left out: this isolates
what the ORM layer costs on the hot path. Ops run one after another (wall µs per op = round trips + client
CPU) and then 8 at a time (ops/s, both pools 8 connections); both on a fresh database per repeat,
alternating which goes first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import save  # noqa: E402
from bench_instances import drop_database, fresh_database  # noqa: E402

from csbot.store import repo  # noqa: E402
from csbot.store.db import Database  # noqa: E402

DEFAULT_PG = os.environ.get("CSBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
CONVERSATIONS = 500  # as bench_webhook.py: requests spread over 500 conversations / buyers
SUGGESTIONS = (("bargain", 91.3, "能便宜点吗", "bargain_1.j2", "亲，已经是活动价了哦"),
               ("bargain", 80.0, "便宜点", "bargain_2.j2", "亲，这个价格很实惠了"),
               ("greeting", 60.0, "在吗", "greeting_1.j2", "亲，在的"))
TEXT = "亲 在吗？能便宜点吗"  # a made-up buyer turn (the same kind as the dev set)
Op = Callable[[int], Awaitable[None]]


def store_op(db: Database, run: str) -> Op:
    async def op(i: int) -> None:
        now = datetime.now(UTC)
        async with db.transaction() as tx:
            event_id = await repo.claim_event(tx, channel="generic", delivery_id=f"d-{run}-{i}",
                                              dedupe_key=f"generic:demo:m-{run}-{i}", type="message.created", now=now)
            assert event_id is not None
            buyer = await repo.upsert_buyer(tx, shop_id="demo", external_id=f"b-{run}-{i % CONVERSATIONS}",
                                            nick="bench", now=now)
            conv = await repo.upsert_conversation(tx, shop_id="demo", external_id=f"c-{run}-{i % CONVERSATIONS}",
                                                  buyer_id=buyer.id, channel="generic", now=now)
            await repo.supersede_pending(tx, conv.id, now)
            msg = await repo.add_message(tx, conv, direction="in", author="buyer", external_id=f"m-{run}-{i}",
                                         text=TEXT, sent_at=now, now=now, intent="bargain", score=91.3,
                                         action="suggested")
            rows = await repo.add_suggestions(tx, msg, [repo.NewSuggestion(*s) for s in SUGGESTIONS], now)
            await repo.save_response(tx, event_id, {"message_id": msg.external_id, "action": "suggested",
                                                    "suggestions": [id_ for id_, _ in rows]})
    return op


CLAIM = """INSERT INTO inbound_events (channel, delivery_id, dedupe_key, type, received_at)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id"""
BUYER = """INSERT INTO buyers (shop_id, external_id, nick, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (shop_id, external_id) DO UPDATE SET nick = excluded.nick RETURNING *"""
CONVERSATION = """INSERT INTO conversations (shop_id, external_id, buyer_id, channel, status, created_at)
VALUES ($1, $2, $3, $4, 'open', $5)
ON CONFLICT (shop_id, external_id) DO UPDATE SET buyer_id = excluded.buyer_id RETURNING *"""
SUPERSEDE = """UPDATE suggestions SET status = 'superseded', decided_at = $2
WHERE conversation_id = $1 AND status = 'pending'"""
MESSAGE = """INSERT INTO messages (conversation_id, shop_id, direction, author, external_id, text, sent_at,
created_at, intent, score, action) VALUES ($1, $2, 'in', 'buyer', $3, $4, $5, $5, $6, $7, $8) RETURNING id"""
SUGGEST = """INSERT INTO suggestions (message_id, conversation_id, rank, intent, score, trigger, template, text,
status, created_at)
SELECT $1, $2, r, i, s, t, tpl, x, 'pending', $3
FROM unnest($4::int[], $5::text[], $6::float8[], $7::text[], $8::text[], $9::text[]) AS u(r, i, s, t, tpl, x)
RETURNING *"""
RESPOND = "UPDATE inbound_events SET response = $2 WHERE id = $1"


def asyncpg_op(pool: asyncpg.Pool, run: str) -> Op:
    ranks = list(range(1, len(SUGGESTIONS) + 1))
    columns = [list(c) for c in zip(*SUGGESTIONS, strict=True)]

    async def op(i: int) -> None:
        now = datetime.now(UTC)
        async with pool.acquire() as conn, conn.transaction():
            event_id = await conn.fetchval(CLAIM, "generic", f"d-{run}-{i}", f"generic:demo:m-{run}-{i}",
                                           "message.created", now)
            assert event_id is not None
            buyer = await conn.fetchrow(BUYER, "demo", f"b-{run}-{i % CONVERSATIONS}", "bench", now)
            conv = await conn.fetchrow(CONVERSATION, "demo", f"c-{run}-{i % CONVERSATIONS}", buyer["id"], "generic",
                                       now)
            await conn.execute(SUPERSEDE, conv["id"], now)
            message_id = await conn.fetchval(MESSAGE, conv["id"], "demo", f"m-{run}-{i}", TEXT, now, "bargain",
                                             91.3, "suggested")
            rows = await conn.fetch(SUGGEST, message_id, conv["id"], now, ranks, *columns)
            await conn.execute(RESPOND, event_id, json.dumps({"message_id": f"m-{run}-{i}", "action": "suggested",
                                                              "suggestions": [r["id"] for r in rows]}))
    return op


async def measure(op: Op, ops: int, concurrency: int, start: int) -> dict[str, float]:
    # One after another: latency per op, and this process's CPU per op (what the client library costs).
    lat = []
    cpu0 = time.process_time()
    for i in range(start, start + ops):
        began = time.perf_counter()
        await op(i)
        lat.append((time.perf_counter() - began) * 1e6)
    cpu_us = (time.process_time() - cpu0) * 1e6 / ops
    # `concurrency` at a time: throughput with the pool busy.
    it = iter(range(start + ops, start + 2 * ops))

    async def worker() -> None:
        for i in it:
            await op(i)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - began
    ordered = sorted(lat)
    return {"p50_us": statistics.median(lat), "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "mean_us": statistics.fmean(lat), "client_cpu_us": cpu_us, "ops_per_s": ops / wall}


async def one_repeat(admin_dsn: str, ops: int, concurrency: int, r: int) -> dict[str, dict[str, float]]:
    name, dsn = await fresh_database(admin_dsn)
    try:
        url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        # Same number of connections on both sides (the pools are full after the warm-up).
        db = await Database.open(url, auto_upgrade=True, pool_size=concurrency, max_overflow=0)
        pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
        try:
            async with db.transaction() as tx:
                await repo.sync_shops(tx, {"demo": "示例小店"})
            ops_by_name = {"store": store_op(db, f"s{r}"), "asyncpg": asyncpg_op(pool, f"a{r}")}
            for op in ops_by_name.values():  # warm-up: connections, statement caches, the conversations exist
                for i in range(CONVERSATIONS):
                    await op(10_000_000 + i)
            order = list(ops_by_name) if r % 2 == 0 else list(reversed(ops_by_name))
            return {name_: await measure(ops_by_name[name_], ops, concurrency, 0) for name_ in order}
        finally:
            await pool.close()
            await db.close()
    finally:
        await drop_database(admin_dsn, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg", default=DEFAULT_PG)
    parser.add_argument("--save-as", default="ingest-asyncpg")
    args = parser.parse_args()
    runs = []
    for r in range(args.repeat):
        res = asyncio.run(one_repeat(args.pg, args.ops, args.concurrency, r))
        runs.append(res)
        print(f"repeat {r + 1}: " + "   ".join(
            f"{k}: p50 {v['p50_us']:.0f} µs p99 {v['p99_us']:.0f} µs cpu {v['client_cpu_us']:.0f} µs/op "
            f"{v['ops_per_s']:.0f} ops/s" for k, v in res.items()), flush=True)
    med = {k: {f: statistics.median(run[k][f] for run in runs) for f in runs[0][k]} for k in ("store", "asyncpg")}
    ratios = {f: statistics.median(run["store"][f] / run["asyncpg"][f] for run in runs)
              for f in ("p50_us", "p99_us", "client_cpu_us", "ops_per_s")}
    print(f"\nmedian of {args.repeat} repeats, {args.ops} ops each:")
    for k, v in med.items():
        print(f"{k:<8} p50 {v['p50_us']:7.0f} µs  p99 {v['p99_us']:7.0f} µs  client CPU {v['client_cpu_us']:6.0f} µs/op"
              f"  {v['ops_per_s']:6.0f} ops/s at concurrency {args.concurrency}")
    print("store / asyncpg: " + "  ".join(f"{f} {x:.2f}x" for f, x in ratios.items()))
    save(args.save_as, {"ops": args.ops, "concurrency": args.concurrency, "runs": runs, "median": med,
                        "ratio_store_vs_asyncpg": ratios})


if __name__ == "__main__":
    main()

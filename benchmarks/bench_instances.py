"""Several instances: webhook req/s and latency for one vs two csbot instances on one PostgreSQL database.

    python benchmarks/bench_instances.py [--requests 2000] [--concurrency 16] [--repeat 3] [--pg DSN]

Per repeat: a bare aiohttp app (the same-run baseline: reads the body, answers a small JSON object), then
`python -m csbot serve` once with one instance and once with two (each a subprocess on its own port, all on
a fresh PostgreSQL database created for that measurement and dropped afterwards). The bounded loopback
client (bench_webhook.py's requests and settings) sends a fixed number of signed message events at fixed
concurrency, spreading them round-robin over the instances, after a warm-up. Every csbot answer must be
200, and the database must then hold one inbound message per request. Reports req/s, p50/p99, and each
figure's ratio to the bare baseline of the same repeat; the summary is the median over the repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, dev_rows, save, summary  # noqa: E402
from bench_webhook import BARE_APP, WARMUP, cpu_seconds, events, free_port, start, stop, wait_ready  # noqa: E402

DEFAULT_PG = os.environ.get("CSBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def load(urls: list[str], requests: list[tuple[bytes, dict[str, str]]], concurrency: int) -> dict[str, Any]:
    """Send every request once with `concurrency` workers, request i to urls[i % len(urls)]."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    actions: dict[str, int] = {}
    numbered = zip(count(), requests, strict=False)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i, (body, headers) in numbered:
                began = time.perf_counter()
                async with session.post(urls[i % len(urls)], data=body, headers=headers) as resp:
                    answer = await resp.read()
                if resp.status == 200:
                    action = str(json.loads(answer).get("action", "?"))
                    actions[action] = actions.get(action, 0) + 1
                latencies.append((time.perf_counter() - began) * 1000)
                statuses[resp.status] = statuses.get(resp.status, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - began
    return {"rps": len(requests) / wall, "ms": summary(latencies), "statuses": statuses, "actions": actions}


async def fresh_database(admin_dsn: str, room: int = 30) -> tuple[str, str]:
    """A new empty database, once the server has `room` free connections (the test suites of other people
    may share it: wait up to 10 minutes rather than fail half-way with "too many clients")."""
    name = f"csbot_bench_{uuid.uuid4().hex[:10]}"
    for _ in range(120):
        try:
            conn = await asyncpg.connect(admin_dsn)
        except asyncpg.TooManyConnectionsError:
            await asyncio.sleep(5)
            continue
        free = await conn.fetchval("SELECT current_setting('max_connections')::int - count(*) FROM pg_stat_activity")
        if free >= room:
            break
        await conn.close()
        await asyncio.sleep(5)
    else:
        raise SystemExit(f"PostgreSQL at {admin_dsn} never had {room} free connections")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')  # our own generated name, not input
    finally:
        await conn.close()
    return name, f"{admin_dsn.rsplit('/', 1)[0]}/{name}"


async def drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def bare_run(n: int, concurrency: int, secret: str, texts: list[str], tmp: Path) -> dict[str, Any]:
    port = free_port()
    proc = start([sys.executable, "-c", BARE_APP, str(port)], tmp, dict(os.environ), tmp / "bare.log")
    try:
        await wait_ready(f"http://127.0.0.1:{port}/healthz", proc)
        url = f"http://127.0.0.1:{port}/webhooks/generic"
        await load([url], events(secret, WARMUP, texts), concurrency)
        return await load([url], events(secret, n, texts), concurrency)
    finally:
        stop(proc)


async def csbot_run(instances: int, n: int, concurrency: int, secret: str, texts: list[str], tmp: Path,
                    admin_dsn: str) -> dict[str, Any]:
    name, dsn = await fresh_database(admin_dsn)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        urls = []
        for k in range(instances):
            port = free_port()
            env = dict(os.environ, CSBOT_PORT=str(port), CSBOT_WEBHOOK_SECRET=secret, CSBOT_DB=dsn,
                       CSBOT_API_TOKEN=secrets.token_urlsafe(16), PYTHONPATH=str(ROOT),
                       # At most 10 + 1 (listener) connections per instance: the server is shared.
                       CSBOT_DB_POOL_SIZE="5", CSBOT_DB_MAX_OVERFLOW="5",
                       # The first instance brings the fresh database to the schema; the others start after it.
                       CSBOT_DB_AUTO_UPGRADE="1" if k == 0 else "")
            log = tmp / f"csbot-{instances}-{k}.log"
            procs.append(start([sys.executable, "-m", "csbot", "serve"], tmp, env, log))
            try:
                await wait_ready(f"http://127.0.0.1:{port}/healthz", procs[-1])
            except RuntimeError:
                print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
                raise
            urls.append(f"http://127.0.0.1:{port}/webhooks/generic")
        warm = await load(urls, events(secret, WARMUP, texts), concurrency)
        cpu_before = sum(cpu_seconds(p.pid) for p in procs)
        result = await load(urls, events(secret, n, texts), concurrency)
        result["server_cpu_ms_per_request"] = (sum(cpu_seconds(p.pid) for p in procs) - cpu_before) * 1000 / n
        result["warmup_statuses"] = warm["statuses"]  # the stored-message count below includes the warm-up
    finally:
        for proc in procs:
            stop(proc)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            result["inbound_messages"] = await conn.fetchval("SELECT count(*) FROM messages WHERE direction = 'in'")
            result["inbound_events"] = await conn.fetchval("SELECT count(*) FROM inbound_events")
            if result["inbound_messages"] != n + WARMUP:  # what the events without a message answered
                result["event_actions"] = [tuple(r) for r in await conn.fetch(
                    "SELECT response->>'action', count(*) FROM inbound_events GROUP BY 1")]
        finally:
            await conn.close()
    finally:
        await drop_database(admin_dsn, name)
    return result


async def bench(n: int, concurrency: int, repeat: int, admin_dsn: str) -> dict[str, Any]:
    texts = [text for text, _ in dev_rows()]
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    runs: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="csbot-bench-inst-") as tmp:
        for r in range(repeat):
            bare = await bare_run(n, concurrency, secret, texts, Path(tmp))
            one = await csbot_run(1, n, concurrency, secret, texts, Path(tmp), admin_dsn)
            two = await csbot_run(2, n, concurrency, secret, texts, Path(tmp), admin_dsn)
            for label, res in (("one", one), ("two", two)):
                if res["statuses"] != {200: n} or res["inbound_messages"] != n + WARMUP:
                    raise SystemExit(f"repeat {r + 1}, {label}: statuses {res['statuses']}, "
                                     f"{res['inbound_messages']} inbound messages (expected {n + WARMUP}), "
                                     f"{res['inbound_events']} inbound events, answers {res['actions']}, "
                                     f"stored answers {res.get('event_actions')}")
            run = {"bare": bare, "one": one, "two": two}
            runs.append(run)
            print(f"repeat {r + 1}: " + "  ".join(f"{k} {v['rps']:.1f} req/s p50 {v['ms']['p50']:.1f} ms "
                                               f"p99 {v['ms']['p99']:.1f} ms" for k, v in run.items()), flush=True)

    def med(label: str, pick: str) -> float:
        return statistics.median(float(run[label]["rps"] if pick == "rps" else run[label]["ms"][pick]) for run in runs)

    def med_ratio(num: str, den: str) -> float:
        return statistics.median(float(run[num]["rps"]) / float(run[den]["rps"]) for run in runs)

    median = {label: {"rps": med(label, "rps"), "p50": med(label, "p50"), "p99": med(label, "p99"),
                      "server_cpu_ms_per_request": statistics.median(
                          float(run[label].get("server_cpu_ms_per_request", 0.0)) for run in runs)}
              for label in ("bare", "one", "two")}
    return {
        "requests": n, "concurrency": concurrency, "repeat": repeat, "runs": runs, "median": median,
        "ratio_one_vs_bare": med_ratio("one", "bare"), "ratio_two_vs_bare": med_ratio("two", "bare"),
        "ratio_two_vs_one": med_ratio("two", "one"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL DSN whose server gets the fresh databases")
    parser.add_argument("--save-as", default="instances", help="results/NAME.json")
    args = parser.parse_args()
    result = asyncio.run(bench(args.requests, args.concurrency, args.repeat, args.pg))
    med = result["median"]
    assert isinstance(med, dict)
    print(f"\nmedian of {args.repeat} repeats, {args.requests} requests at concurrency {args.concurrency}:")
    for label in ("bare", "one", "two"):
        m = med[label]
        print(f"{label:<5} {m['rps']:8.1f} req/s  p50 {m['p50']:7.1f} ms  p99 {m['p99']:7.1f} ms  "
              f"server CPU {m['server_cpu_ms_per_request']:.2f} ms/req")
    print(f"one/bare {result['ratio_one_vs_bare']:.4f}x  two/bare {result['ratio_two_vs_bare']:.4f}x  "
          f"two/one {result['ratio_two_vs_one']:.2f}x")
    print(json.dumps({"saved": str(save(args.save_as, result))}))


if __name__ == "__main__":
    main()

"""Webhook throughput: signed message events -> persisted suggestion, against a bare aiohttp app.

    python benchmarks/bench_webhook.py [--requests 2000] [--concurrency 16] [--runs 3] [--profile] [--source DIR]

Starts ``python -m csbot serve`` in a temporary directory (SQLite in WAL mode, CSBOT_PORT /
CSBOT_WEBHOOK_SECRET / CSBOT_API_TOKEN / CSBOT_DB set), and, in the same run, three baselines: a bare
aiohttp app that reads the body and answers a small JSON object; the same app storing each body with one
SQLite INSERT and COMMIT (aiosqlite, WAL, synchronous=NORMAL as csbot), the floor of any webhook that
persists durably per request; and the matching floor, the bare app plus csbot's own signature check,
normalising and ranking (no database), the ceiling no store design could beat. ``--runs N`` repeats the
whole set N times (interleaved) and reports the medians of the ratios. A loopback aiohttp client sends a
fixed number of requests at fixed concurrency (after a warm-up) and stops by itself; it reports req/s and
latency p50/p99 for each, and checks that every csbot answer is 200 with a decision and that the database
holds one message and its suggestions per request. ``--profile`` runs csbot under cProfile and prints
where the server's time goes. ``--source DIR`` runs the server from another checkout (e.g. ``git archive
HEAD`` unpacked, when the working tree is mid-change). The messages are the dev set's texts, read at run
time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import pstats
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS_DIR, ROOT, dev_rows, save, summary  # noqa: E402

from csbot.ingest.signatures import signed_headers  # noqa: E402

WARMUP = 100
BARE_APP = """
import sys
from aiohttp import web

async def hello(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"hello": "world"})

app = web.Application()
app.router.add_post("/webhooks/generic", hello)
app.router.add_get("/healthz", lambda request: web.json_response({"ok": True}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""
# The persistence floor: the same handler plus one INSERT and COMMIT per request on one aiosqlite connection
# (WAL, synchronous=NORMAL, as csbot configures SQLite).
BARE_SQLITE_APP = """
import sys
import aiosqlite
from aiohttp import web

db_key = web.AppKey("db", aiosqlite.Connection)

async def store(request: web.Request) -> web.Response:
    body = await request.read()
    db = request.app[db_key]
    await db.execute("INSERT INTO events (delivery_id, body) VALUES (?, ?)", (request.headers["webhook-id"], body))
    await db.commit()
    return web.json_response({"hello": "world"})

async def database(app: web.Application):
    async with aiosqlite.connect(sys.argv[2]) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("CREATE TABLE IF NOT EXISTS events "
                         "(id INTEGER PRIMARY KEY, delivery_id TEXT UNIQUE, body BLOB)")
        await db.commit()
        app[db_key] = db
        yield

app = web.Application()
app.cleanup_ctx.append(database)
app.router.add_post("/webhooks/generic", store)
app.router.add_get("/healthz", lambda request: web.json_response({"ok": True}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

# The matching floor: the same handler plus what csbot does to every message before it touches the database,
# with csbot's own code and library (argv: port, secret, library dir): the signature check, the JSON, normalising
# and ranking (`question_parts`, one ranking per question). No database, no rendering. Whatever csbot's store
# did, its webhook could not beat this app; its ratio to the bare app is the ceiling of csbot's.
BARE_MATCH_APP = """
import gc, json, sys, types
from datetime import UTC, datetime
from pathlib import Path
from aiohttp import web
from csbot.ingest.signatures import verify
from csbot.library import load_libraries
from csbot.match import Matcher
from csbot.normalize import normalize
from csbot.pipeline import question_parts

secret = (sys.argv[2],)
deps = types.SimpleNamespace(matcher=Matcher(load_libraries(Path(sys.argv[3]))))  # question_parts reads .matcher

async def match(request: web.Request) -> web.Response:
    body = await request.read()
    verify(secret, request.headers, body, now=datetime.now(UTC), tolerance=300)
    event = json.loads(body)
    parts = question_parts(deps, normalize(event["message"]["text"]))
    top = parts[0].top
    return web.json_response({"action": "matched" if top else "abstained", "intent": top.intent if top else None})

gc.collect()
gc.freeze()  # as csbot serve does
app = web.Application()
app.router.add_post("/webhooks/generic", match)
app.router.add_get("/healthz", lambda request: web.json_response({"ok": True}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def events(secret: str, n: int, texts: list[str]) -> list[tuple[bytes, dict[str, str]]]:
    out = []
    now = int(time.time())
    run = uuid.uuid4().hex[:8]
    for i in range(n):
        event = {
            "type": "message.created", "shop": "demo", "conversation_id": f"bench-{run}-{i % 500}",
            "buyer": {"id": f"b-{run}-{i % 500}", "nick": "bench"},
            "message": {"id": f"m-{run}-{i}", "text": texts[i % len(texts)]},
        }
        body = json.dumps(event, ensure_ascii=False).encode()
        headers = signed_headers(secret, f"msg_{run}_{i}", now, body)
        headers["content-type"] = "application/json"
        out.append((body, headers))
    return out


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60.0
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status == 200:
                        return
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"server not ready at {url}")


async def load(url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int) -> dict[str, object]:
    """Send every request once with ``concurrency`` workers; latency per request and wall-clock req/s."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    actions: dict[str, int] = {}
    queue = iter(requests)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for body, headers in queue:
                start = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as resp:
                    answer = await resp.read()
                latencies.append((time.perf_counter() - start) * 1000)
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                if resp.status == 200:
                    action = json.loads(answer).get("action", "?") if answer.startswith(b"{") else "?"
                    actions[str(action)] = actions.get(str(action), 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {"rps": len(requests) / wall, "ms": summary(latencies), "statuses": statuses, "actions": actions}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # Output to a file, not a pipe: a full pipe nobody reads would stall the server mid-benchmark.
    with log.open("wb") as out:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)  # run_app shuts down cleanly on SIGINT (and cProfile writes its file)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def baseline(code: str, args: list[str], tmp_dir: Path, secret: str, texts: list[str], n: int,
                   concurrency: int, name: str, env: dict[str, str] | None = None) -> dict[str, object]:
    port = free_port()
    proc = start([sys.executable, "-c", code, str(port), *args], tmp_dir, env or dict(os.environ),
                 tmp_dir / f"{name}.log")
    try:
        await wait_ready(f"http://127.0.0.1:{port}/healthz", proc)
        url = f"http://127.0.0.1:{port}/webhooks/generic"
        await load(url, events(secret, WARMUP, texts), concurrency)
        cpu_before = cpu_seconds(proc.pid)
        result = await load(url, events(secret, n, texts), concurrency)
        result["server_cpu_ms_per_request"] = (cpu_seconds(proc.pid) - cpu_before) * 1000 / n
    finally:
        stop(proc)
    return result


async def bench(n: int, concurrency: int, profile: bool, source: Path) -> dict[str, object]:
    texts = [text for text, _ in dev_rows()]
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    with tempfile.TemporaryDirectory(prefix="csbot-bench-") as tmp:
        tmp_dir = Path(tmp)
        # Baselines, same machine, same client: bare aiohttp, and bare aiohttp + one SQLite commit per request.
        bare_result = await baseline(BARE_APP, [], tmp_dir, secret, texts, n, concurrency, "bare")
        bare_sqlite_result = await baseline(BARE_SQLITE_APP, [str(tmp_dir / "bare.db")], tmp_dir, secret, texts, n,
                                            concurrency, "bare_sqlite")
        # The matching floor, from the same checkout as the server.
        bare_match_result = await baseline(BARE_MATCH_APP, [secret, str(source / "scripts_library")], tmp_dir,
                                           secret, texts, n, concurrency, "bare_match",
                                           env=dict(os.environ, PYTHONPATH=str(source)))
        # csbot serve, SQLite WAL in the temp dir.
        port = free_port()
        db = tmp_dir / "csbot.db"
        env = dict(os.environ, CSBOT_PORT=str(port), CSBOT_WEBHOOK_SECRET=secret,
                   CSBOT_API_TOKEN=secrets.token_urlsafe(16), CSBOT_DB=f"sqlite+aiosqlite:///{db}",
                   CSBOT_LIBRARY=str(source / "scripts_library"), CSBOT_TEMPLATES=str(source / "templates"),
                   PYTHONPATH=str(source))
        prof = tmp_dir / "csbot.prof"
        cmd = [sys.executable, *(["-m", "cProfile", "-o", str(prof)] if profile else []), "-m", "csbot", "serve"]
        server = start(cmd, tmp_dir, env, tmp_dir / "csbot.log")
        try:
            try:
                await wait_ready(f"http://127.0.0.1:{port}/healthz", server)
            except RuntimeError:
                print((tmp_dir / "csbot.log").read_text(errors="replace")[-3000:], file=sys.stderr)
                raise
            url = f"http://127.0.0.1:{port}/webhooks/generic"
            await load(url, events(secret, WARMUP, texts), concurrency)
            cpu_before = cpu_seconds(server.pid)
            csbot_result = await load(url, events(secret, n, texts), concurrency)
            # CPU per request vs wall time per request says whether the server computes or waits.
            csbot_result["server_cpu_ms_per_request"] = (cpu_seconds(server.pid) - cpu_before) * 1000 / n
        finally:
            stop(server)
        with sqlite3.connect(db) as conn:
            journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 (our own names)
                      for t in ("messages", "suggestions") if t in tables}
        if profile and prof.exists():
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            shutil.copy(prof, RESULTS_DIR / "webhook-server.prof")  # for pstats / snakeviz afterwards
            print("\ncsbot server profile (cumulative, top 25):")
            pstats.Stats(str(prof)).sort_stats("cumulative").print_stats(25)
            print("csbot server profile (own time, top 25):")
            pstats.Stats(str(prof)).sort_stats("tottime").print_stats(25)
    return {
        "requests": n, "concurrency": concurrency, "journal_mode": journal, "rows": counts,
        "bare": bare_result, "bare_sqlite": bare_sqlite_result, "bare_match": bare_match_result,
        "csbot": csbot_result,
        "ratio_rps": csbot_result["rps"] / bare_result["rps"],  # type: ignore[operator]
        "ratio_rps_vs_bare_sqlite": csbot_result["rps"] / bare_sqlite_result["rps"],  # type: ignore[operator]
        # The ceiling: the matching floor against the bare app; and how near csbot comes to that floor.
        "ratio_match_floor": bare_match_result["rps"] / bare_result["rps"],  # type: ignore[operator]
        "ratio_rps_vs_bare_match": csbot_result["rps"] / bare_match_result["rps"],  # type: ignore[operator]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole set; medians of the ratios")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout to run the server from")
    parser.add_argument("--save-as", default="webhook", help="results/NAME.json (run_all.py reads webhook)")
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        result = asyncio.run(bench(args.requests, args.concurrency, args.profile, args.source.resolve()))
        result["source"] = "working tree" if args.source.resolve() == ROOT else str(args.source)
        for name in ("bare", "bare_sqlite", "bare_match", "csbot"):
            r = result[name]
            assert isinstance(r, dict)
            print(f"{name:<11} {r['rps']:8.1f} req/s  p50 {r['ms']['p50']:7.1f} ms  p99 {r['ms']['p99']:7.1f} ms  "
                  f"server CPU {r['server_cpu_ms_per_request']:.2f} ms/req  statuses {r['statuses']}  "
                  f"actions {r['actions']}")
        print(f"csbot / bare = {result['ratio_rps']:.3f}x   csbot / bare+sqlite = "
              f"{result['ratio_rps_vs_bare_sqlite']:.3f}x   match floor / bare = {result['ratio_match_floor']:.3f}x   "
              f"csbot / match floor = {result['ratio_rps_vs_bare_match']:.3f}x   "
              f"journal_mode={result['journal_mode']}  rows={result['rows']}",
              flush=True)
        runs.append(result)
    # Saved: the run with the median csbot/bare ratio (the keys run_all.py reads), plus every run's medians.
    out = dict(sorted(runs, key=lambda r: float(r["ratio_rps"]))[len(runs) // 2])  # type: ignore[arg-type]
    if len(runs) > 1:
        out["medians"] = medians = _medians(runs)
        out["runs"] = runs
        print(f"medians of {len(runs)} runs: csbot {medians['csbot_rps']:.1f} req/s, bare {medians['bare_rps']:.1f}, "
              f"bare+sqlite {medians['bare_sqlite_rps']:.1f}, match floor {medians['bare_match_rps']:.1f}; "
              f"csbot / bare = {medians['ratio_rps']:.3f}x, csbot / bare+sqlite = "
              f"{medians['ratio_rps_vs_bare_sqlite']:.3f}x, match floor / bare = {medians['ratio_match_floor']:.3f}x")
    if not args.profile:
        save(args.save_as, out)


def _medians(runs: list[dict[str, object]]) -> dict[str, float]:
    """Medians over runs of each server's req/s, p50, p99 and CPU, and of the within-run ratios."""
    out: dict[str, float] = {}
    for name in ("bare", "bare_sqlite", "bare_match", "csbot"):
        rows = [r[name] for r in runs]
        out[f"{name}_rps"] = statistics.median(r["rps"] for r in rows)  # type: ignore[index]
        out[f"{name}_p50_ms"] = statistics.median(r["ms"]["p50"] for r in rows)  # type: ignore[index]
        out[f"{name}_p99_ms"] = statistics.median(r["ms"]["p99"] for r in rows)  # type: ignore[index]
        out[f"{name}_cpu_ms"] = statistics.median(r["server_cpu_ms_per_request"] for r in rows)  # type: ignore[index]
    for ratio in ("ratio_rps", "ratio_rps_vs_bare_sqlite", "ratio_match_floor", "ratio_rps_vs_bare_match"):
        out[ratio] = statistics.median(float(r[ratio]) for r in runs)  # type: ignore[arg-type]
    return out


if __name__ == "__main__":
    main()

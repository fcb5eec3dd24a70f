"""Run every issue-8 benchmark and write their figures into docs/benchmarks.md (on demand, never in pytest).

    python benchmarks/run_all.py                  # matcher, memory, webhook, then the docs sections
    python benchmarks/run_all.py --docs-only      # re-render the sections from benchmarks/results/*.json
    python benchmarks/run_all.py --webhook-source /tmp/csbot-head   # run the server from another checkout

Only the sections "## Matching and webhook (issue 8)" and "## Matching quality on the dev set (issue 3)"
of docs/benchmarks.md are replaced; anything else in the file is left as it is.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS_DIR, ROOT, dev_rows, real_libraries  # noqa: E402
from quality_report import leave_out  # noqa: E402

from csbot.evaluate import evaluate  # noqa: E402
from csbot.match import Matcher  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
HERE = Path(__file__).resolve().parent
SECTIONS = ("## Matching and webhook (issue 8)", "## Matching quality on the dev set (issue 3)")


def run(script: str, *args: str) -> None:
    print(f"$ python benchmarks/{script} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args], check=True)


def load(name: str) -> dict[str, object] | None:
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _cutoff(method: str, value: float) -> str:
    if method == "difflib" and value < 0.6:
        return "difflib its own default 0.6 (no higher cutoff helped)"
    return f"{method} {value}"


def _statuses(statuses: dict[str, int]) -> str:
    return ", ".join(f"{count} × HTTP {status}" for status, count in sorted(statuses.items()))


def _us(x: float) -> str:
    return f"{x:,.0f} µs" if x < 10_000 else f"{x / 1000:,.1f} ms"


def matching_section() -> str:
    lines = [SECTIONS[0], ""]
    lines += [f"Machine: {platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}; shared and "
              "noisy, so read the ratios (baseline measured in the same run) rather than the absolute times.", ""]
    matcher = load("matcher")
    if matcher:
        lines += [
            "### Matcher: µs per message, csbot vs RapidFuzz `extractOne(WRatio)` vs `difflib.get_close_matches`",
            "",
            "`python benchmarks/bench_matcher.py`: the 300 dev-set messages, already normalised, ranked against "
            "the library and against synthetic inflations of it (real triggers mutated within their intent: "
            "a unit substituted or inserted from the locale's vocabulary, or two triggers joined). The "
            "baselines search the same normalised trigger strings with `processor=None`; their abstain "
            "cutoff is the one that maximises their own dev top-1. `real` is the shipped library. csbot: "
            f"{matcher['rounds']} rounds, p50/p99 over all samples; baselines one pass"
            + ("; the index frozen as `csbot serve` freezes it (`gc.freeze()`)" if matcher.get("gc_freeze") else "")
            + ". Figures from `results/matcher.json`:",
            "",
            "| triggers | csbot p50 | csbot p99 | WRatio p50 | WRatio p99 | difflib p50 | difflib p99 "
            "| csbot/WRatio p99 | csbot/difflib p99 | top-1 csbot | top-1 WRatio | top-1 difflib |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in matcher["results"]:  # type: ignore[attr-defined]
            m, w, d, t = r["matcher_us"], r["wratio_us"], r["difflib_us"], r["top1"]
            size = f"{r['triggers']:,}" + (" (real)" if r["size"] == "real" else "")
            dl = "" if r["difflib_messages"] == 300 else f" ({r['difflib_messages']} msgs)"
            lines.append(
                f"| {size} | {_us(m['p50'])} | {_us(m['p99'])} | {_us(w['p50'])} | {_us(w['p99'])} | "
                f"{_us(d['p50'])}{dl} | {_us(d['p99'])} | {r['ratio_p99_vs_wratio']:.3f}x | "
                f"{r['ratio_p99_vs_difflib']:.3f}x | {t['csbot']:.1%} | {t['wratio']:.1%} | "
                + ("-" if t["difflib"] is None else f"{t['difflib']:.1%}") + " |"
            )
        best = ", ".join(f"{'real' if r['size'] == 'real' else _size(r['size'])} "
                         f"{r['matcher_best_of_rounds_us']['p50']:,.0f}/{r['matcher_best_of_rounds_us']['p99']:,.0f} µs"
                         for r in matcher["results"])  # type: ignore[attr-defined]
        norm = matcher.get("normalize")
        lines += [
            "",
            f"Best of rounds (per message its fastest round, p50/p99): {best}."
            + (f" `normalize` per raw dev message: p50 {norm['normalize_cold_us']['p50']:,.0f} µs, p99 "
               f"{norm['normalize_cold_us']['p99']:,.0f} µs with its word memos empty, "
               f"{norm['normalize_warm_us']['p50']:,.0f}/{norm['normalize_warm_us']['p99']:,.0f} µs filled, against "
               f"{norm['lazy_pinyin_of_runs_us']['p50']:,.0f}/{norm['lazy_pinyin_of_runs_us']['p99']:,.0f} µs for "
               "pypinyin's `lazy_pinyin` of the same Chinese runs alone." if isinstance(norm, dict) else ""),
            "",
            "Top-1 is scored as `csbot eval` scores it (an `other` line is right only when the method "
            "abstains). At the real size the baselines' best cutoffs were "
            + ", ".join(_cutoff(k, v) for r in matcher["results"] if r["size"] == "real"  # type: ignore[attr-defined]
                        for k, v in r["cutoffs"].items())
            + ". difflib's top-1 is measured at the real size only (a full pass at 100k takes minutes). "
            "The inflated libraries' top-1 falls because their synthetic triggers are noise, not because the "
            "matcher changes: on the same library, the bound-pruned scorer gives exactly the scores and "
            "decisions of scoring every shortlisted trigger (checked on the dev set and the 5,047 real turns). "
            "The 1,000-trigger library is a random sample of the real one, so most dev phrasings lose the "
            "triggers that answer them: csbot then abstains, which top-1 counts wrong, where WRatio's best "
            "cutoff lets it guess (the same sample for every method; the smaller the sample, the more this "
            "favours guessing).",
            "",
        ]
    lines += _notes("matcher_notes.md")
    memory = load("memory")
    if memory:
        lines += [
            "### Memory",
            "",
            "`python benchmarks/bench_memory.py`: resident set size of a fresh interpreter that built the "
            "matcher"
            + (" (then `gc.collect(); gc.freeze()`, as `csbot serve` does)" if memory.get("gc_freeze") else "")
            + f", against the same interpreter without an index ({memory['baseline_rss_mib']:.1f} MiB: "
            "Python, csbot, OpenCC and pypinyin dictionaries loaded). Figures from `results/memory.json`:",
            "",
            "| triggers | RSS | index (RSS − baseline) | RSS / baseline |",
            "|---|---|---|---|",
        ]
        for c in memory["cases"]:  # type: ignore[attr-defined]
            size = f"{c['triggers']:,}" + (" (real)" if c["size"] == "real" else "")
            lines.append(f"| {size} | {c['rss_mib']:.1f} MiB | {c['index_mib']:.1f} MiB | "
                         f"{c['ratio_vs_baseline']:.2f}x |")
        lines.append("")
        lines += _notes("memory_notes.md")
    webhook = load("webhook")
    if webhook:
        runs = webhook.get("runs") or []
        assert isinstance(runs, list)
        lines += [
            "### Webhook: signed message event → persisted suggestion",
            "",
            f"`python benchmarks/bench_webhook.py`: {webhook['requests']:,} signed `message.created` events "
            f"(after 100 warm-up), {webhook['concurrency']} concurrent loopback aiohttp-client connections, "
            f"`python -m csbot serve` with SQLite (journal mode `{webhook['journal_mode']}`) in a temp "
            f"directory, server run from the {webhook.get('source', 'working tree')}; baselines: a bare aiohttp "
            "app that reads the body and answers a JSON object; the same app storing each body with one "
            "SQLite INSERT and COMMIT; and the matching floor, the bare app plus csbot's own signature check, "
            "normalising and ranking with the shipped library (no database: the most any store design could "
            "reach); same client, same run"
            + (f"; of {len(runs)} runs (`--runs {len(runs)}`), the one with the median csbot/bare ratio"
               if len(runs) > 1 else "") + ". Figures from `results/webhook.json`:",
            "",
            "| server | req/s | p50 | p99 | server CPU per request | answers |",
            "|---|---|---|---|---|---|",
            *(_webhook_row(label, row) for label, row in (
                ("bare aiohttp", webhook.get("bare")),
                ("bare aiohttp + 1 SQLite INSERT/COMMIT", webhook.get("bare_sqlite")),
                ("matching floor: bare aiohttp + csbot's signature check, normalising, ranking",
                 webhook.get("bare_match")),
                ("csbot", webhook.get("csbot"))) if isinstance(row, dict)),
            "",
            f"csbot / bare throughput: **{webhook['ratio_rps']:.3f}x**"
            + (f" (runs: {', '.join(format(r['ratio_rps'], '.3f') for r in runs)})" if len(runs) > 1 else "")
            + (f", csbot / bare+SQLite {webhook['ratio_rps_vs_bare_sqlite']:.3f}x"
               if "ratio_rps_vs_bare_sqlite" in webhook else "")
            + (f"; the matching floor / bare {webhook['ratio_match_floor']:.3f}x"
               + (f" (runs: {', '.join(format(r['ratio_match_floor'], '.3f') for r in runs)})" if len(runs) > 1
                  else "")
               + f", csbot / the matching floor {webhook['ratio_rps_vs_bare_match']:.3f}x"
               if "ratio_match_floor" in webhook else "")
            + ". Target ≥ 0.5x: **not met**"
            + (", and out of reach of any store: the matching floor alone is below it"
               if float(webhook.get("ratio_match_floor", 1.0)) < 0.5 else "")  # type: ignore[arg-type]
            + ".",
            "",
        ]
        lines += _notes("webhook_notes.md")
    return "\n".join(lines)


def _notes(name: str) -> list[str]:
    """The hand-written notes that go under a generated table (benchmarks/NAME), if there are any."""
    path = HERE / name
    return [path.read_text(encoding="utf-8").rstrip(), ""] if path.is_file() else []


def _size(size: object) -> str:
    return f"{size // 1000}k" if isinstance(size, int) and size >= 1000 else str(size)


def _webhook_row(label: str, r: dict[str, Any]) -> str:
    answers = _statuses(r["statuses"])
    if label == "csbot":
        answers += " (" + ", ".join(f"{k} {v}" for k, v in r["actions"].items()) + ")"
    rps = f"{r['rps']:,.0f}" if r["rps"] >= 1000 else f"{r['rps']:,.1f}"
    return (f"| {label} | {rps} | {r['ms']['p50']:.1f} ms | {r['ms']['p99']:,.1f} ms | "
            f"{r['server_cpu_ms_per_request']:.2f} ms | {answers} |")


def quality_section() -> str:
    libraries = real_libraries()
    rows = dev_rows()
    report = evaluate(Matcher(libraries), rows)
    identical, removed, held = leave_out(libraries, rows)
    precision = "undefined" if report.auto_send_precision is None else f"{report.auto_send_precision:.1%}"
    held_precision = "undefined" if held.auto_send_precision is None else f"{held.auto_send_precision:.1%}"
    return "\n".join([
        SECTIONS[1],
        "",
        "`csbot eval ../shared/eval/dev.jsonl` (details, confusion and real-turn coverage in "
        "[quality.md](quality.md), `python benchmarks/quality_report.py`).",
        "",
        "| index | lines | top-1 | top-3 | abstain rate | auto-sent | auto-send precision | wrong auto-send rate |",
        "|---|---|---|---|---|---|---|---|",
        f"| full library | {report.n} | {report.top1:.1%} | {report.top3:.1%} | {report.abstain_rate:.1%} | "
        f"{report.auto_sent} | {precision} | {report.wrong_auto_send_rate:.2%} |",
        f"| leave-out ({removed} triggers removed) | {held.n} | {held.top1:.1%} | {held.top3:.1%} | "
        f"{held.abstain_rate:.1%} | {held.auto_sent} | {held_precision} | {held.wrong_auto_send_rate:.2%} |",
        "",
        f"Honest note: {identical} of the {report.n} dev lines are identical to a library trigger after "
        "normalisation (the library was tuned on this set). Removing every trigger that equals a dev line "
        f"gives the leave-out row: top-1 {held.top1:.1%} is the better guess for unseen messages of the "
        "same kind; the held-out sets decide. (An earlier check, kept from the issue-3 notes and not re-run "
        "here: on 75 messages written fresh, before any further tuning, the matcher scored top-1 0.920, "
        "top-3 0.987, no wrong auto-send.) Speed of `Matcher.rank()` is in the issue-8 section below.",
        "",
    ])


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


def write_docs() -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.is_file() else (
        "# Benchmarks and measured figures\n\n"
    )
    for heading, body in zip(SECTIONS, (matching_section(), quality_section()), strict=True):
        pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
        found = pattern.search(text)
        if found:
            text = text[: found.start()] + body.rstrip() + "\n\n" + text[found.end() :]
        else:
            text = text.rstrip() + "\n\n" + body.rstrip() + "\n"
    DOC.write_text(text.rstrip() + "\n", encoding="utf-8")
    print(f"wrote {DOC}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs-only", action="store_true")
    parser.add_argument("--webhook-source", help="checkout to run `csbot serve` from (default: this tree)")
    parser.add_argument("--requests", default="2000")
    args = parser.parse_args()
    if not args.docs_only:
        run("bench_matcher.py")
        run("bench_memory.py")
        run("bench_webhook.py", "--requests", args.requests,
            *(["--source", args.webhook_source] if args.webhook_source else []))
    write_docs()


if __name__ == "__main__":
    main()

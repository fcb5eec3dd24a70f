"""Shared helpers for the on-demand benchmarks (never imported by the package or by pytest)."""

from __future__ import annotations

import json
import random
import statistics
from dataclasses import replace
from pathlib import Path

from csbot.library import Library, LibrarySet, load_libraries

ROOT = Path(__file__).resolve().parents[1]
LIBRARY_DIR = ROOT / "scripts_library"
SHARED = ROOT.parent / "shared"
DEV_SET = SHARED / "eval" / "dev.jsonl"
REAL_SET = SHARED / "data" / "real_buyer_messages.jsonl"
RESULTS_DIR = ROOT / "benchmarks" / "results"
SEED = 8


def real_libraries() -> LibrarySet:
    return load_libraries(LIBRARY_DIR)


def trigger_total(libraries: LibrarySet) -> int:
    return sum(len(i.triggers) for lib in libraries.libraries.values() for i in lib.intents.values())


def inflate(libraries: LibrarySet, target: int, seed: int = SEED) -> LibrarySet:
    """The real library grown (or thinned) to ``target`` triggers, deterministically.

    Synthetic triggers are mutations of real ones of the same intent and locale: a character (or English
    word) substituted or inserted from that locale's own vocabulary, or two triggers of the intent joined.
    So the index keys, trigger lengths and per-intent shares keep the real library's distribution; the
    bigram postings get longer, which is what makes a big library slow.
    """
    rng = random.Random(seed)
    pool = [(lib.locale, intent.id, t) for lib in libraries.libraries.values() for intent in lib.intents.values()
            for t in intent.triggers]
    if target <= len(pool):
        keep = set(rng.sample(range(len(pool)), target))
        chosen = [p for i, p in enumerate(pool) if i in keep]
        return _rebuild(libraries, chosen)
    vocab: dict[str, list[str]] = {}
    for locale, _, t in pool:
        vocab.setdefault(locale, []).extend(t.split() if locale == "en" else [c for c in t if not c.isspace()])
    by_intent: dict[tuple[str, str], list[str]] = {}
    for locale, intent_id, t in pool:
        by_intent.setdefault((locale, intent_id), []).append(t)
    seen = {(loc, t) for loc, _, t in pool}
    out = list(pool)
    while len(out) < target:
        locale, intent_id, base = rng.choice(pool)
        words = vocab[locale]
        units = base.split() if locale == "en" else list(base)
        op = rng.random()
        if op < 0.4 and units:
            units[rng.randrange(len(units))] = rng.choice(words)
        elif op < 0.8:
            units.insert(rng.randrange(len(units) + 1), rng.choice(words))
        else:
            other = rng.choice(by_intent[(locale, intent_id)])
            units = units + (other.split() if locale == "en" else list(other))[:3]
        text = " ".join(units) if locale == "en" else "".join(units)
        if (locale, text) not in seen:
            seen.add((locale, text))
            out.append((locale, intent_id, text))
    return _rebuild(libraries, out)


def _rebuild(libraries: LibrarySet, rows: list[tuple[str, str, str]]) -> LibrarySet:
    grouped: dict[tuple[str, str], list[str]] = {}
    for locale, intent_id, t in rows:
        grouped.setdefault((locale, intent_id), []).append(t)
    new: dict[str, Library] = {}
    for locale, lib in libraries.libraries.items():
        intents = {i.id: replace(i, triggers=tuple(grouped.get((locale, i.id), ()))) for i in lib.intents.values()}
        new[locale] = replace(lib, intents=intents)
    return LibrarySet(libraries=new)


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def dev_rows() -> list[tuple[str, str]]:
    return [(str(r["text"]), str(r["intent"])) for r in read_jsonl(DEV_SET)]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(values), "p99": percentile(values, 99), "n": float(len(values))}


def rss_kib() -> int:
    """Resident set size of this process, KiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def save(name: str, data: dict[str, object]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path

"""Resident memory of the matcher: the full script library, and the library inflated to 10k / 100k triggers.

    python benchmarks/bench_memory.py [--no-freeze] [--out FILE]

Each case runs in a fresh interpreter and reports VmRSS (Linux). The baseline, measured in the same run,
is an interpreter that imported csbot's matcher and normalised one message (OpenCC and pypinyin
dictionaries loaded) but built no index; each case is reported as RSS and as the ratio to that baseline.
Every interpreter ends as ``csbot serve`` starts serving: ``gc.collect(); gc.freeze()`` (``--no-freeze``:
collect only; freezing relinks objects into another list and should not change RSS).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import save  # noqa: E402

CASE = """
import gc, json, sys
sys.path.insert(0, {bench!r})
from _common import inflate, real_libraries, rss_kib, trigger_total
from csbot.match import Matcher
from csbot.normalize import normalize
normalize("在吗 包邮吗 hello")
size = {size!r}
triggers = 0
if size != "none":
    libraries = real_libraries() if size == "real" else inflate(real_libraries(), int(size))
    matcher = Matcher(libraries)
    triggers = trigger_total(libraries)
    del libraries
gc.collect()
if {freeze!r}:
    gc.freeze()
print(json.dumps({{"rss_kib": rss_kib(), "triggers": triggers}}))
"""


def measure(size: str, freeze: bool = True) -> dict[str, int]:
    code = CASE.format(bench=str(Path(__file__).resolve().parent), size=size, freeze=freeze)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    result: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-freeze", action="store_true", help="no gc.freeze() after building (default: freeze)")
    parser.add_argument("--out", type=Path, help="write the JSON here instead of benchmarks/results/memory.json")
    args = parser.parse_args()
    freeze = not args.no_freeze
    baseline = measure("none", freeze)
    cases = []
    for size in ("real", "10000", "100000"):
        result = measure(size, freeze)
        cases.append({
            "size": size,
            "triggers": result["triggers"],
            "rss_mib": result["rss_kib"] / 1024,
            "index_mib": (result["rss_kib"] - baseline["rss_kib"]) / 1024,
            "ratio_vs_baseline": result["rss_kib"] / baseline["rss_kib"],
        })
        print(f"{result['triggers']:>7} triggers: RSS {cases[-1]['rss_mib']:.1f} MiB "
              f"(+{cases[-1]['index_mib']:.1f} MiB over the {baseline['rss_kib'] / 1024:.1f} MiB baseline, "
              f"{cases[-1]['ratio_vs_baseline']:.2f}x)", flush=True)
    data = {"baseline_rss_mib": baseline["rss_kib"] / 1024, "gc_freeze": freeze, "cases": cases}
    if args.out:
        args.out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    else:
        save("memory", data)


if __name__ == "__main__":
    main()

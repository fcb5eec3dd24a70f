"""`csbot serve` freezes what it built at startup (the matcher's index above all) before it serves, so a full
garbage collection during a webhook does not walk the index (benchmarks/bench_matcher.py measures the pause)."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from csbot import cli


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """cmd_serve configures the root logger and adds the PII filter to its handlers: undo both afterwards."""
    root = logging.getLogger()
    handlers = [(h, list(h.filters)) for h in root.handlers]
    level = root.level
    yield
    for handler in root.handlers[:]:
        if all(handler is not h for h, _ in handlers):
            root.removeHandler(handler)
    for handler, filters in handlers:
        handler.filters[:] = filters
    root.setLevel(level)


def test_serve_freezes_the_matcher_before_serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  restored_logging: None) -> None:
    monkeypatch.chdir(tmp_path)  # the demo credentials file and the default SQLite path are relative
    for name in [k for k in os.environ if k.startswith("CSBOT_")]:
        monkeypatch.delenv(name)
    built: list[Any] = []
    seen: dict[str, Any] = {}
    load_matcher = cli._load_matcher

    def spy_load_matcher(settings: Any) -> tuple[Any, Any]:
        libraries, matcher = load_matcher(settings)
        built.append(matcher)
        return libraries, matcher

    def run_app(app: web.Application, **kwargs: Any) -> None:  # where the real one would start serving
        matcher = built[0]
        unfrozen = {id(o) for o in gc.get_objects()}  # gc.get_objects() leaves out the frozen generation
        seen.update(freeze_count=gc.get_freeze_count(), tracked=gc.is_tracked(matcher._postings),
                    matcher_unfrozen=id(matcher) in unfrozen, postings_unfrozen=id(matcher._postings) in unfrozen)

    monkeypatch.setattr(cli, "_load_matcher", spy_load_matcher)
    monkeypatch.setattr(web, "run_app", run_app)
    try:
        assert cli.main(["serve"]) == 0
    finally:
        gc.unfreeze()  # give this process's objects back to the collector for the rest of the run
    assert seen, "cmd_serve did not reach web.run_app"
    assert seen["freeze_count"] > 0
    assert seen["tracked"]  # the index is still a GC object, just in the permanent generation
    assert not seen["matcher_unfrozen"] and not seen["postings_unfrozen"]

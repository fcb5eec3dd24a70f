"""Configuration: defaults, csbot.toml, environment overrides, and one clear error per bad key."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest

from csbot.cli import main
from csbot.config import ConfigError, load_settings
from csbot.hours import Shift

GOOD = """
[csbot]
database = "sqlite:///shop.db"
port = 9000

[outbox]
max_attempts = 5

[shops.tea]
name = "茶叶小铺"
agent_name = "阿茶"
bargain_ceiling = 15
topup_link = "https://tea.example/topup"
couriers = [{name = "申通", fee = 6}, {name = "顺丰", fee = 18}]

[shops.tea.hours]
timezone = "Asia/Shanghai"
weekdays = [1, 2, 3, 4, 5]
shifts = ["09:00-12:00", "13:30-22:00"]
holidays = ["2026-10-01"]

[shops.tea.auto_send]
enabled = false
on_abstain = "escalate"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "csbot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_cwd: Path) -> None:
    s = load_settings(None, {})
    assert s.database_url == "sqlite+aiosqlite:///csbot.db"
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert list(s.shops) == ["demo"]
    assert (s.library_dir / "zh-CN").is_dir() and (s.templates_dir / "zh-CN").is_dir()


def test_file_is_read(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, GOOD), {})
    assert s.database_url == "sqlite+aiosqlite:///shop.db"  # plain URL gets the async driver
    assert s.port == 9000 and s.outbox.max_attempts == 5
    tea = s.shops["tea"]
    assert (tea.name, tea.agent_name, tea.bargain_ceiling) == ("茶叶小铺", "阿茶", 15.0)
    assert [(c.name, c.fee) for c in tea.couriers] == [("申通", 6.0), ("顺丰", 18.0)]
    assert tea.hours.shifts == (Shift(time(9), time(12)), Shift(time(13, 30), time(22)))
    assert tea.hours.weekdays == frozenset({1, 2, 3, 4, 5})
    assert tea.hours.holidays == frozenset({date(2026, 10, 1)})
    assert (tea.auto_send.enabled, tea.auto_send.on_abstain) == (False, "escalate")


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    env = {"CSBOT_DB": "postgresql://u@db/shop", "CSBOT_PORT": "8181", "CSBOT_HOST": "0.0.0.0",
           "CSBOT_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
           "CSBOT_OUTBOUND_URL": "https://platform.example/replies", "CSBOT_API_TOKEN": "t0ken",
           "CSBOT_LIBRARY": str(tmp_path), "CSBOT_TEMPLATES": str(tmp_path)}
    s = load_settings(write(tmp_path, GOOD), env)
    assert s.database_url == "postgresql+asyncpg://u@db/shop"
    assert (s.port, s.host, s.api_token) == (8181, "0.0.0.0", "t0ken")
    assert s.outbound_url == "https://platform.example/replies"
    assert s.library_dir == tmp_path and s.templates_dir == tmp_path


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        ("port = 70000", {}, "port"),
        ("", {"CSBOT_PORT": "eighty"}, "port"),
        ("", {"CSBOT_WEBHOOK_SECRET": "not-a-secret"}, "webhook_secret"),
        ("", {"CSBOT_OUTBOUND_URL": "ftp://x"}, "outbound_url"),
        ("", {"CSBOT_DB": "mysql://root@localhost/x"}, "database"),
        ("", {"CSBOT_LIBRARY": "/no/such/dir"}, "library"),
        ("colour = 'blue'", {}, "colour"),
        ("[shops.a]\nname = 'A'\nbargain = 5", {}, "shops.a.bargain"),
        ("[shops.a.hours]\nshifts = ['9-18']", {}, "shops.a.hours.shifts[0]"),
        ("[shops.a.hours]\ntimezone = 'Mars/Olympus'", {}, "shops.a.hours.timezone"),
        ("[shops.a.hours]\nweekdays = [0]", {}, "shops.a.hours.weekdays"),
        ("[shops.a.hours]\nholidays = ['soon']", {}, "shops.a.hours.holidays[0]"),
        ("[shops.a]\ncouriers = [{name = 'EMS'}]", {}, "shops.a.couriers[0].fee"),
        ("[shops.a.auto_send]\non_abstain = 'panic'", {}, "shops.a.auto_send.on_abstain"),
        ("[outbox]\ntimeout = 90", {}, "outbox.lease_seconds"),
        ("this is = = not toml", {}, "csbot.toml"),
    ],
)
def test_invalid_config_names_the_key(tmp_path: Path, text: str, env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env)
    assert info.value.key.startswith(key) or key in info.value.key


def test_cli_exits_2_with_the_key_on_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[shops.a]\nbargain_ceiling = 'lots'\n")
    assert main(["--config", str(path), "lint"]) == 2
    err = capsys.readouterr().err
    assert "shops.a.bargain_ceiling" in err and err.count("\n") == 1

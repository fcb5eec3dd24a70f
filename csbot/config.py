"""Settings: the only reader of csbot.toml and CSBOT_* environment variables.

`load_settings(path, environ)` returns a frozen `Settings` or raises `ConfigError` naming the bad key.
Unknown keys are errors too: a typo in a config file must not silently fall back to a default.
"""

from __future__ import annotations

import base64
import binascii
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from csbot.hours import BusinessHours, QuietHours, Shift

DEFAULT_CONFIG_FILE = "csbot.toml"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///csbot.db"
MAX_BODY_BYTES = 1024 * 1024
AbstainAction = Literal["suggest", "escalate"]
FollowupMode = Literal["suggest", "auto"]


class ConfigError(Exception):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config error at {key}: {message}")
        self.key = key


@dataclass(frozen=True)
class Courier:
    name: str
    fee: float


@dataclass(frozen=True)
class AutoSendPolicy:
    enabled: bool = True  # in business hours, auto-send intents whose mode is "auto" and score clears
    offline_reply: bool = True  # outside business hours, send the offline reply once per off-period
    on_abstain: AbstainAction = "suggest"  # no confident intent: leave suggestions, or escalate
    # Caps on automatic messages (counted in the database, so they hold across instances); over a cap the
    # reply becomes a suggestion for an agent. None: no cap.
    max_per_buyer_per_hour: int | None = 6
    max_per_shop_per_minute: int | None = 60


@dataclass(frozen=True)
class ReminderSettings:
    """催付 and follow-ups for one shop. Offsets and delays are seconds (a demo can run a cycle in seconds)."""

    enabled: bool = True
    payment_stages: tuple[float, ...] = (1200.0, 10800.0)  # after the order: 20 min, 3 h
    min_remaining: float = 3600.0  # a stage after the first only if this long remains before auto-close
    last_call_before_close: float | None = 5400.0  # last call 90 min before auto-close; None: no last call
    quiet_hours: QuietHours | None = QuietHours(time(22, 0), time(8, 0))  # shop time; None: any hour
    max_per_order: int = 3
    max_per_buyer: int = 3  # automated messages to one buyer per `buyer_window`
    buyer_window: float = 86400.0
    consult_followup_after: float | None = 14400.0  # asked, no order: follow up for the next shift
    consult_followup_mode: FollowupMode = "suggest"
    aftersales_followup_after: float | None = 172800.0  # after-sales unresolved 48 h: task for agents
    after_delivery_after: float | None = 86400.0  # closing message with the review request


@dataclass(frozen=True)
class AfterSalesSettings:
    """After-sales cases (csbot/aftersales), from the shop manuals. Seconds, like the reminders."""

    reply_within: float = 300.0  # an agent's first answer to a return / quality / logistics case: 5 minutes
    resolve_within: float = 172800.0  # resolved within 48 hours (the manuals' logistics rule, for every type)
    refund_timeout: float | None = 172800.0  # a platform refund request is answered before this (else it auto-agrees)
    ship_within: float | None = 172800.0  # a paid order not shipped after this is a late shipment (queued early)
    waiting_buyer_after: float | None = 86400.0  # a case waiting for the buyer: remind them after this quiet


@dataclass(frozen=True)
class ShopSettings:
    id: str
    name: str
    agent_name: str = "小美"
    locale: str = "zh-CN"
    hours: BusinessHours = field(default_factory=BusinessHours)
    auto_send: AutoSendPolicy = field(default_factory=AutoSendPolicy)
    bargain_ceiling: float = 10.0  # yuan an agent may concede without asking a supervisor
    couriers: tuple[Courier, ...] = (Courier("申通", 8), Courier("EMS", 15), Courier("顺丰", 22))
    topup_link: str = "https://shop.example/topup"
    free_shipping_over: float | None = 99.0
    reminders: ReminderSettings = field(default_factory=ReminderSettings)
    after_sales: AfterSalesSettings = field(default_factory=AfterSalesSettings)
    # [shops.<id>.channels.<name>]: platform options, validated by the channel's connector; secrets from
    # CSBOT_SHOP_<ID>_<CHANNEL>_<KEY> (see csbot/ingest/connectors and docs/connectors.md)
    channels: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class TickerSettings:
    """The reminder clock: how often APScheduler asks for due rows, and how long a claim holds."""

    interval: float = 1.0
    lease_seconds: float = 60.0  # a claimed row whose firing failed is retried after this
    batch: int = 100  # rows claimed and fired per transaction (on SQLite it holds the write lock meanwhile)
    max_attempts: int = 5  # then the reminder is skipped with the error as its reason


@dataclass(frozen=True)
class OutboxSettings:
    max_attempts: int = 8
    base_delay: float = 2.0  # seconds before the first retry; doubles per attempt, with jitter
    max_delay: float = 600.0
    timeout: float = 10.0
    lease_seconds: float = 60.0  # a claimed row whose sender died is retried after this
    poll_interval: float = 1.0


@dataclass(frozen=True)
class ConsoleSettings:
    """The agents' console: sessions, cookies, and who may read /metrics."""

    session_hours: float = 12.0  # a login lasts this long
    secure_cookies: bool = False  # set true behind HTTPS: the session cookie is then never sent in clear
    metrics_public: bool = True  # false: GET /metrics needs a token or a login like /api/*
    locale: str = "zh-CN"  # the console's default language (zh-CN or en); ?lang= switches


@dataclass(frozen=True)
class DatabaseSettings:
    """[database] besides its url (Settings.database_url). See the README's "Database" section."""

    pool_size: int = 10  # PostgreSQL connections kept open per csbot process ...
    max_overflow: int = 10  # ... and opened beyond them at peaks
    auto_upgrade: bool = False  # PostgreSQL: run pending migrations at start (SQLite always does)


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    host: str = "127.0.0.1"
    port: int = 8080
    library_dir: Path = field(default_factory=lambda: bundled_dir("scripts_library"))
    templates_dir: Path = field(default_factory=lambda: bundled_dir("templates"))
    webhook_secret: str | None = None
    outbound_url: str | None = None
    api_token: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    timestamp_tolerance: int = 300
    shops: Mapping[str, ShopSettings] = field(default_factory=lambda: {"demo": ShopSettings("demo", "示例小店")})
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    ticker: TickerSettings = field(default_factory=TickerSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)

    def shop(self, shop_id: str) -> ShopSettings | None:
        return self.shops.get(shop_id)


def bundled_dir(name: str) -> Path:
    """The script library / templates shipped with csbot: beside the package in a checkout
    (editable install), inside it in a wheel."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / name, package / "_bundled" / name):
        if candidate.is_dir():
            return candidate
    return package.parent / name


def decode_webhook_secret(secret: str) -> bytes:
    """Standard Webhooks secrets are 'whsec_' + base64 of the key bytes."""
    if not secret.startswith("whsec_"):
        raise ValueError("must start with 'whsec_' (Standard Webhooks secret)")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error as exc:
        raise ValueError("the part after 'whsec_' is not valid base64") from exc
    if len(key) < 16:
        raise ValueError("the key is shorter than 16 bytes")
    return key


# --- parsing ---------------------------------------------------------------------------------------

_ENV_KEYS = {
    "CSBOT_HOST": "host",
    "CSBOT_PORT": "port",
    "CSBOT_LIBRARY": "library",
    "CSBOT_TEMPLATES": "templates",
    "CSBOT_WEBHOOK_SECRET": "webhook_secret",
    "CSBOT_OUTBOUND_URL": "outbound_url",
    "CSBOT_API_TOKEN": "api_token",
}
_TOP_KEYS = set(_ENV_KEYS.values()) | {"database", "outbox", "ticker", "shops", "max_body_bytes", "timestamp_tolerance",
                                        "console"}


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read `path` (or $CSBOT_CONFIG, or ./csbot.toml when present), then apply CSBOT_* overrides."""
    environ = {} if environ is None else environ
    data: dict[str, Any] = {}
    if path is None and environ.get("CSBOT_CONFIG"):
        path = Path(environ["CSBOT_CONFIG"])
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = Path(DEFAULT_CONFIG_FILE)
    base = Path.cwd()
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError(str(path), "file not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
        base = path.resolve().parent
        data = data.get("csbot", {}) | {k: v for k, v in data.items() if k != "csbot"}
    for env, key in _ENV_KEYS.items():
        if environ.get(env):
            data[key] = environ[env]
    _database_env(data, environ)
    _channel_env(data, environ)
    return _settings(data, base)


def _settings(data: dict[str, Any], base: Path) -> Settings:
    _no_unknown(data, _TOP_KEYS, "")
    defaults = Settings()
    secret = _opt_str(data, "webhook_secret")
    if secret is not None:
        try:
            decode_webhook_secret(secret)
        except ValueError as exc:
            raise ConfigError("webhook_secret (CSBOT_WEBHOOK_SECRET)", str(exc)) from None
    outbound = _opt_str(data, "outbound_url")
    if outbound is not None and (urlsplit(outbound).scheme not in ("http", "https") or not urlsplit(outbound).netloc):
        raise ConfigError("outbound_url (CSBOT_OUTBOUND_URL)", f"not an http(s) URL: {outbound!r}")
    shops_raw = data.get("shops", {})
    if not isinstance(shops_raw, dict):
        raise ConfigError("shops", "must be a table of [shops.<id>] sections")
    shops = {sid: _shop(sid, raw) for sid, raw in shops_raw.items()} or dict(defaults.shops)
    return Settings(
        database_url=_database_url(_str(data.get("database", {}), "url", defaults.database_url, "database")),
        database=_database(data.get("database", {})),
        host=_str(data, "host", defaults.host),
        port=_int(data, "port", defaults.port, 1, 65535),
        library_dir=_dir(data, "library", base, defaults.library_dir),
        templates_dir=_dir(data, "templates", base, defaults.templates_dir),
        webhook_secret=secret,
        outbound_url=outbound,
        api_token=_opt_str(data, "api_token"),
        max_body_bytes=_int(data, "max_body_bytes", defaults.max_body_bytes, 1024, 64 * MAX_BODY_BYTES),
        timestamp_tolerance=_int(data, "timestamp_tolerance", defaults.timestamp_tolerance, 1, 3600),
        shops=shops,
        outbox=_outbox(data.get("outbox", {})),
        ticker=_ticker(data.get("ticker", {})),
        console=_console(data.get("console", {})),
    )


def _database_url(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError("database (CSBOT_DB)", f"not a database URL: {exc}") from None
    # Accept the plain forms people paste and pick the async driver we ship.
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}
    name = driver.get(parsed.drivername, parsed.drivername)
    if name not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise ConfigError("database (CSBOT_DB)", f"unsupported driver {parsed.drivername!r}; use sqlite or postgresql")
    return parsed.set(drivername=name).render_as_string(hide_password=False)


_DATABASE_ENV = {"CSBOT_DB": "url", "CSBOT_DB_POOL_SIZE": "pool_size", "CSBOT_DB_MAX_OVERFLOW": "max_overflow",
                 "CSBOT_DB_AUTO_UPGRADE": "auto_upgrade"}


def _database_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """`database = "URL"` is short for a [database] table with only `url`; CSBOT_DB* override its keys."""
    raw = data.get("database")
    table = dict(raw) if isinstance(raw, dict) else ({} if raw is None else {"url": raw})
    for env, key in _DATABASE_ENV.items():
        if environ.get(env):
            table[key] = environ[env]
    if table:
        data["database"] = table


def _database(raw: Any) -> DatabaseSettings:
    _table(raw, set(_DATABASE_ENV.values()), "database")
    d = DatabaseSettings()
    auto = raw.get("auto_upgrade", d.auto_upgrade)
    if isinstance(auto, str):  # CSBOT_DB_AUTO_UPGRADE
        auto = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(auto.lower(), auto)
    return DatabaseSettings(
        pool_size=_int(raw, "pool_size", d.pool_size, 1, 1000, "database"),
        max_overflow=_int(raw, "max_overflow", d.max_overflow, 0, 1000, "database"),
        auto_upgrade=_bool({"auto_upgrade": auto}, "auto_upgrade", d.auto_upgrade, "database"),
    )


def _shop(shop_id: str, raw: Any) -> ShopSettings:
    key = f"shops.{shop_id}"
    if not isinstance(raw, dict):
        raise ConfigError(key, "must be a table")
    allowed = {"name", "agent_name", "locale", "hours", "auto_send", "bargain_ceiling", "couriers",
               "topup_link", "free_shipping_over", "reminders", "channels", "after_sales"}
    _no_unknown(raw, allowed, key)
    d = ShopSettings(shop_id, shop_id)
    couriers_raw = raw.get("couriers")
    couriers = d.couriers
    if couriers_raw is not None:
        if not isinstance(couriers_raw, list) or not couriers_raw:
            raise ConfigError(f"{key}.couriers", "must be a non-empty list of {name, fee}")
        couriers = tuple(_courier(f"{key}.couriers[{i}]", c) for i, c in enumerate(couriers_raw))
    free_over = raw.get("free_shipping_over", d.free_shipping_over)
    if free_over is not None and (not isinstance(free_over, int | float) or free_over < 0):
        raise ConfigError(f"{key}.free_shipping_over", "must be a non-negative number")
    locale = _str(raw, "locale", d.locale, key)
    if locale not in ("zh-CN", "en"):
        raise ConfigError(f"{key}.locale", f"unsupported locale {locale!r}; use zh-CN or en")
    return ShopSettings(
        id=shop_id,
        name=_str(raw, "name", shop_id, key),
        agent_name=_str(raw, "agent_name", d.agent_name, key),
        locale=locale,
        hours=_hours(f"{key}.hours", raw.get("hours", {})),
        auto_send=_auto_send(f"{key}.auto_send", raw.get("auto_send", {})),
        bargain_ceiling=_num(raw, "bargain_ceiling", d.bargain_ceiling, key),
        couriers=couriers,
        topup_link=_str(raw, "topup_link", d.topup_link, key),
        free_shipping_over=None if free_over is None else float(free_over),
        reminders=_reminders(f"{key}.reminders", raw.get("reminders", {})),
        after_sales=_after_sales(f"{key}.after_sales", raw.get("after_sales", {})),
        channels=_channels(f"{key}.channels", raw.get("channels", {})),
    )


def _channel_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """CSBOT_SHOP_<ID>_<CHANNEL>_<KEY> overrides a declared channel's option (credentials belong in env)."""
    shops = data.get("shops")
    if not isinstance(shops, dict):
        return
    for shop_id, shop in shops.items():
        channels = shop.get("channels") if isinstance(shop, dict) else None
        for channel, options in (channels.items() if isinstance(channels, dict) else ()):
            if not isinstance(options, dict):
                continue
            prefix = "_".join(("CSBOT_SHOP", shop_id, channel, "")).upper().replace("-", "_")
            for env, value in environ.items():
                if env.startswith(prefix) and value:
                    options[env.removeprefix(prefix).lower()] = value


def _channels(key: str, raw: Any) -> dict[str, dict[str, Any]]:
    from csbot.ingest.connectors import CONNECTORS  # the connectors import this module

    if not isinstance(raw, dict):
        raise ConfigError(key, "must be a table of [<channel>] sections")
    for name, options in raw.items():
        if name not in CONNECTORS:
            raise ConfigError(f"{key}.{name}", f"unknown channel (expected one of: {', '.join(sorted(CONNECTORS))})")
        if not isinstance(options, dict):
            raise ConfigError(f"{key}.{name}", "must be a table")
        CONNECTORS[name].check(f"{key}.{name}", options)
    return {name: dict(options) for name, options in raw.items()}


def _courier(key: str, raw: Any) -> Courier:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ConfigError(key, "must be a table with a string 'name' and a number 'fee'")
    _no_unknown(raw, {"name", "fee"}, key)
    return Courier(raw["name"], _num(raw, "fee", -1.0, key))


def _hours(key: str, raw: Any) -> BusinessHours:
    _table(raw, {"timezone", "weekdays", "shifts", "holidays"}, key)
    d = BusinessHours()
    tz = _str(raw, "timezone", d.timezone, key)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{key}.timezone", f"unknown time zone {tz!r}") from None
    weekdays = raw.get("weekdays", sorted(d.weekdays))
    if not isinstance(weekdays, list) or not weekdays or not all(isinstance(w, int) and 1 <= w <= 7 for w in weekdays):
        raise ConfigError(f"{key}.weekdays", "must be a non-empty list of ISO weekdays 1 (Mon) … 7 (Sun)")
    shifts_raw = raw.get("shifts", [str(s) for s in d.shifts])
    if not isinstance(shifts_raw, list) or not shifts_raw:
        raise ConfigError(f"{key}.shifts", 'must be a non-empty list like ["08:30-12:00", "13:00-23:00"]')
    shifts = tuple(_shift(f"{key}.shifts[{i}]", s) for i, s in enumerate(shifts_raw))
    holidays_raw = raw.get("holidays", [])
    if not isinstance(holidays_raw, list):
        raise ConfigError(f"{key}.holidays", 'must be a list of dates like ["2026-10-01"]')
    holidays = frozenset(_date(f"{key}.holidays[{i}]", h) for i, h in enumerate(holidays_raw))
    return BusinessHours(tz, frozenset(weekdays), shifts, holidays)


def _shift(key: str, raw: Any) -> Shift:
    if not isinstance(raw, str) or raw.count("-") != 1:
        raise ConfigError(key, f'must be "HH:MM-HH:MM", got {raw!r}')
    start, end = (part.strip() for part in raw.split("-"))
    try:
        shift = Shift(time.fromisoformat(start), time(0, 0) if end == "24:00" else time.fromisoformat(end))
    except ValueError:
        raise ConfigError(key, f'must be "HH:MM-HH:MM", got {raw!r}') from None
    if shift.start == shift.end:
        raise ConfigError(key, "a shift must not start and end at the same time")
    return shift


def _date(key: str, raw: Any) -> date:
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise ConfigError(key, f"not a date (YYYY-MM-DD): {raw!r}") from None


def _auto_send(key: str, raw: Any) -> AutoSendPolicy:
    _table(raw, {"enabled", "offline_reply", "on_abstain", "max_per_buyer_per_hour", "max_per_shop_per_minute"}, key)
    d = AutoSendPolicy()
    on_abstain = _str(raw, "on_abstain", d.on_abstain, key)
    if on_abstain not in ("suggest", "escalate"):
        raise ConfigError(f"{key}.on_abstain", "must be 'suggest' or 'escalate'")
    return AutoSendPolicy(
        enabled=_bool(raw, "enabled", d.enabled, key),
        offline_reply=_bool(raw, "offline_reply", d.offline_reply, key),
        on_abstain="escalate" if on_abstain == "escalate" else "suggest",
        max_per_buyer_per_hour=_cap(raw, "max_per_buyer_per_hour", d.max_per_buyer_per_hour, key),
        max_per_shop_per_minute=_cap(raw, "max_per_shop_per_minute", d.max_per_shop_per_minute, key),
    )


def _cap(raw: Mapping[str, Any], name: str, default: int | None, prefix: str) -> int | None:
    """A positive whole number, or `false` for no cap."""
    if name not in raw:
        return default
    if raw[name] is False:
        return None
    return _int(raw, name, 0, 1, 1_000_000, prefix)


def _outbox(raw: Any) -> OutboxSettings:
    _table(raw, {"max_attempts", "base_delay", "max_delay", "timeout", "lease_seconds", "poll_interval"}, "outbox")
    d = OutboxSettings()
    timeout = _num(raw, "timeout", d.timeout, "outbox")
    lease_seconds = _num(raw, "lease_seconds", d.lease_seconds, "outbox")
    if lease_seconds <= timeout:
        # Another instance would claim a reply still being sent, and send it twice in normal operation.
        raise ConfigError("outbox.lease_seconds", f"must be longer than outbox.timeout ({timeout:g} s)")
    return OutboxSettings(
        max_attempts=_int(raw, "max_attempts", d.max_attempts, 1, 100, "outbox"),
        base_delay=_num(raw, "base_delay", d.base_delay, "outbox"),
        max_delay=_num(raw, "max_delay", d.max_delay, "outbox"),
        timeout=timeout,
        lease_seconds=lease_seconds,
        poll_interval=_num(raw, "poll_interval", d.poll_interval, "outbox"),
    )


def _ticker(raw: Any) -> TickerSettings:
    _table(raw, {"interval", "lease_seconds", "batch", "max_attempts"}, "ticker")
    d = TickerSettings()
    interval = _num(raw, "interval", d.interval, "ticker")
    if interval <= 0:
        raise ConfigError("ticker.interval", "must be more than 0 seconds")
    return TickerSettings(
        interval=interval,
        lease_seconds=_num(raw, "lease_seconds", d.lease_seconds, "ticker"),
        batch=_int(raw, "batch", d.batch, 1, 10000, "ticker"),
        max_attempts=_int(raw, "max_attempts", d.max_attempts, 1, 100, "ticker"),
    )


def _console(raw: Any) -> ConsoleSettings:
    _table(raw, {"session_hours", "secure_cookies", "metrics_public", "locale"}, "console")
    d = ConsoleSettings()
    locale = _str(raw, "locale", d.locale, "console")
    if locale not in ("zh-CN", "en"):
        raise ConfigError("console.locale", f"unsupported locale {locale!r}; use zh-CN or en")
    hours = _num(raw, "session_hours", d.session_hours, "console")
    if hours <= 0:
        raise ConfigError("console.session_hours", "must be more than 0")
    return ConsoleSettings(session_hours=hours,
                           secure_cookies=_bool(raw, "secure_cookies", d.secure_cookies, "console"),
                           metrics_public=_bool(raw, "metrics_public", d.metrics_public, "console"), locale=locale)


_REMINDER_KEYS = {"enabled", "payment_stages", "min_remaining", "last_call_before_close", "quiet_hours",
                  "max_per_order", "max_per_buyer", "buyer_window", "consult_followup_after",
                  "consult_followup_mode", "aftersales_followup_after", "after_delivery_after"}


def _reminders(key: str, raw: Any) -> ReminderSettings:
    _table(raw, _REMINDER_KEYS, key)
    d = ReminderSettings()
    stages_raw = raw.get("payment_stages", list(d.payment_stages))
    if not isinstance(stages_raw, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in stages_raw
    ) or sorted(stages_raw) != stages_raw or len(set(stages_raw)) != len(stages_raw):
        raise ConfigError(f"{key}.payment_stages",
                          f"must be a list of increasing positive seconds after the order, got {stages_raw!r}")
    mode = _str(raw, "consult_followup_mode", d.consult_followup_mode, key)
    if mode not in ("suggest", "auto"):
        raise ConfigError(f"{key}.consult_followup_mode", "must be 'suggest' or 'auto'")
    return ReminderSettings(
        enabled=_bool(raw, "enabled", d.enabled, key),
        payment_stages=tuple(float(v) for v in stages_raw),
        min_remaining=_num(raw, "min_remaining", d.min_remaining, key),
        last_call_before_close=_off(raw, "last_call_before_close", d.last_call_before_close, key),
        quiet_hours=_quiet(f"{key}.quiet_hours", raw.get("quiet_hours", str(d.quiet_hours))),
        max_per_order=_int(raw, "max_per_order", d.max_per_order, 0, 100, key),
        max_per_buyer=_int(raw, "max_per_buyer", d.max_per_buyer, 0, 100, key),
        buyer_window=_num(raw, "buyer_window", d.buyer_window, key),
        consult_followup_after=_off(raw, "consult_followup_after", d.consult_followup_after, key),
        consult_followup_mode="auto" if mode == "auto" else "suggest",
        aftersales_followup_after=_off(raw, "aftersales_followup_after", d.aftersales_followup_after, key),
        after_delivery_after=_off(raw, "after_delivery_after", d.after_delivery_after, key),
    )


def _after_sales(key: str, raw: Any) -> AfterSalesSettings:
    _table(raw, {"reply_within", "resolve_within", "refund_timeout", "ship_within", "waiting_buyer_after"}, key)
    d = AfterSalesSettings()
    return AfterSalesSettings(
        reply_within=_num(raw, "reply_within", d.reply_within, key),
        resolve_within=_num(raw, "resolve_within", d.resolve_within, key),
        refund_timeout=_off(raw, "refund_timeout", d.refund_timeout, key),
        ship_within=_off(raw, "ship_within", d.ship_within, key),
        waiting_buyer_after=_off(raw, "waiting_buyer_after", d.waiting_buyer_after, key),
    )


def _off(raw: Mapping[str, Any], name: str, default: float | None, prefix: str) -> float | None:
    """Seconds, or `false` to switch the step off."""
    if name not in raw:
        return default
    if raw[name] is False:
        return None
    return _num(raw, name, 0.0, prefix)


def _quiet(key: str, raw: Any) -> QuietHours | None:
    if raw in ("", False):
        return None
    shift = _shift(key, raw)  # same "HH:MM-HH:MM" form as a shift, wrapping past midnight alike
    return QuietHours(shift.start, shift.end)


# --- typed getters: each names the full key in its error --------------------------------------------


def _full(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _table(raw: Any, allowed: set[str], key: str) -> None:
    """`raw` must be a TOML table whose keys are all in `allowed`."""
    if not isinstance(raw, dict):
        raise ConfigError(key, "must be a table")
    _no_unknown(raw, allowed, key)


def _no_unknown(raw: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    for name in raw:
        if name not in allowed:
            raise ConfigError(_full(prefix, name), f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def _get(raw: Mapping[str, Any], name: str, default: Any, prefix: str, ok: Callable[[Any], bool], what: str) -> Any:
    value = raw.get(name, default)
    if not ok(value):
        raise ConfigError(_full(prefix, name), f"must be {what}, got {value!r}")
    return value


def _str(raw: Mapping[str, Any], name: str, default: str, prefix: str = "") -> str:
    return str(_get(raw, name, default, prefix, lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string"))


def _opt_str(raw: Mapping[str, Any], name: str) -> str | None:
    value = raw.get(name)
    return None if value in (None, "") else _str(raw, name, "")


def _bool(raw: Mapping[str, Any], name: str, default: bool, prefix: str) -> bool:
    return bool(_get(raw, name, default, prefix, lambda v: isinstance(v, bool), "true or false"))


def _int(raw: Mapping[str, Any], name: str, default: int, lo: int, hi: int, prefix: str = "") -> int:
    value = raw.get(name, default)
    if isinstance(value, str) and value.strip().isdigit():  # environment variables are strings
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(_full(prefix, name), f"must be a whole number from {lo} to {hi}, got {value!r}")
    return value


def _num(raw: Mapping[str, Any], name: str, default: float, prefix: str) -> float:
    ok: Callable[[Any], bool] = lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= 0  # noqa: E731
    return float(_get(raw, name, default, prefix, ok, "a non-negative number"))


def _dir(raw: Mapping[str, Any], name: str, base: Path, default: Path) -> Path:
    if name not in raw:
        return default
    path = Path(_str(raw, name, ""))
    path = path if path.is_absolute() else base / path
    if not path.is_dir():
        env = {v: k for k, v in _ENV_KEYS.items()}[name]
        raise ConfigError(f"{name} ({env})", f"directory not found: {path}")
    return path

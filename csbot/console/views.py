"""Console: HTTP handlers for the console pages, its JSON endpoints, the live socket, KPIs and metrics.

Thin: each takes what it needs from `request.app[...]` and calls the store or a pure module."""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from sqlalchemy import select

from csbot.aftersales import repo as cases_repo
from csbot.console import auth, i18n, kpis, live
from csbot.console import repo as console_repo
from csbot.console.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Identity
from csbot.console.metrics import CaseCounts
from csbot.errors import MalformedEvent, NotFound
from csbot.keys import clock_key, db_key, hub_key, identity_key, metrics_key, outbox_key, settings_key
from csbot.pipeline import send_reply
from csbot.reminders import followups
from csbot.reminders import repo as reminders_repo
from csbot.store import repo
from csbot.store.models import Buyer, Order, Remark
from csbot.web.api import _json_body, _path_id, conversation_json, message_json
from csbot.web.middlewares import json_response

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
QUEUE_STATUSES = ("waiting", "escalated")


@cache
def _templates() -> jinja2.Environment:
    # Autoescaping everywhere: buyer nicks and texts end up in these pages.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                              autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.StrictUndefined)


def _lang(request: web.Request) -> str:
    return i18n.pick(request.query.get("lang"), request.cookies.get("csbot_lang"),
                     request.app[settings_key].console.locale)


def _page(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    lang = _lang(request)
    html = _templates().get_template(name).render(lang=lang, t=i18n.STRINGS[lang], **context)
    resp = web.Response(text=html, content_type="text/html", status=status)
    resp.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "no-store"
    if "lang" in request.query and request.query["lang"] in i18n.LOCALES:
        resp.set_cookie("csbot_lang", lang, max_age=365 * 86400, samesite="Lax", httponly=True)
    return resp


def _identity(request: web.Request) -> Identity:
    return request[identity_key]


def _safe_next(raw: str | None) -> str:
    # Only our own console pages: an open redirect after login is a phishing tool.
    if raw and raw.startswith("/console") and not raw.startswith("/console/login") and "//" not in raw:
        return raw
    return "/console"


# --- login -----------------------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    return _login_form(request, token, error=False)


def _login_form(request: web.Request, token: str, *, error: bool, next_url: str | None = None) -> web.Response:
    resp = _page(request, "login.html", status=401 if error else 200, csrf=token,
                 next=_safe_next(next_url or request.query.get("next")), error=error)
    # Double-submit cookie: before a session exists, the login form's CSRF token is this cookie's value.
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/console/login",
                    secure=request.app[settings_key].console.secure_cookies)
    return resp


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    offered = str(form.get(auth.CSRF_FIELD, ""))
    if not cookie or not secrets.compare_digest(cookie.encode(), offered.encode()):
        raise auth.Forbidden("missing or wrong CSRF token: reload the login page")
    name, password = str(form.get("name", ""))[:64], str(form.get("password", ""))[:1024]
    settings, now = request.app[settings_key], request.app[clock_key].now()
    async with request.app[db_key].transaction() as tx:
        user = await auth.check_password(tx, name, password)
        token = None if user is None else await auth.start_session(tx, user, now=now,
                                                                   hours=settings.console.session_hours)
    if token is None:
        return _login_form(request, cookie, error=True, next_url=str(form.get("next", "")))
    resp = web.HTTPSeeOther(_safe_next(str(form.get("next", ""))))
    # HttpOnly: page scripts (and injected ones) cannot read it; SameSite=Strict: never sent on
    # cross-site requests, on top of the CSRF token.
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", path="/",
                    max_age=int(settings.console.session_hours * 3600), secure=settings.console.secure_cookies)
    resp.del_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    raise resp


async def logout(request: web.Request) -> web.Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        async with request.app[db_key].transaction() as tx:
            await console_repo.end_session(tx, auth.token_hash(cookie))
    resp = web.HTTPSeeOther("/console/login")
    resp.del_cookie(SESSION_COOKIE, path="/")
    raise resp


# --- pages -----------------------------------------------------------------------------------------


def _boot(request: web.Request) -> dict[str, Any]:
    me = _identity(request)
    settings = request.app[settings_key]
    return {"me": {"name": me.name, "role": me.role}, "csrf": me.csrf_token or "", "lang": _lang(request),
            "t": i18n.STRINGS[_lang(request)],
            "shops": {s.id: {"name": s.name, "bargain_ceiling": s.bargain_ceiling} for s in settings.shops.values()},
            "targets": {"amber": kpis.TARGET_AVG, "red": kpis.TARGET_MAX}}


async def console_page(request: web.Request) -> web.Response:
    return _page(request, "console.html", boot=_boot(request), me=_identity(request))


async def supervisor_page(request: web.Request) -> web.Response:
    auth.require_supervisor(_identity(request))
    return _page(request, "supervisor.html", boot=_boot(request), me=_identity(request))


async def kpis_page(request: web.Request) -> web.Response:
    shop, start, end = _kpi_window(request)
    async with request.app[db_key].read() as tx:
        figures = await kpis.compute(tx, shop=shop, start=start, end=end)
    query = request.query_string
    return _page(request, "kpis.html", k=figures, charts=kpi_charts(figures), me=_identity(request),
                 csv_url="/api/kpis?format=csv" + (f"&{query}" if query else ""),
                 form={"shop": shop or "", "from": request.query.get("from", ""), "to": request.query.get("to", "")})


async def socket(request: web.Request) -> web.WebSocketResponse:
    return await live.live_socket(request, request.app[hub_key])


# --- queue and conversation actions ----------------------------------------------------------------


async def queue(request: web.Request) -> web.Response:
    """GET /api/queue?shop=&status=waiting|escalated: conversations waiting for a human, newest first."""
    status = request.query.get("status")
    statuses = (status,) if status in QUEUE_STATUSES else QUEUE_STATUSES
    items = []
    async with request.app[db_key].read() as tx:
        rows: list[tuple[Any, Buyer]] = []
        for s in statuses:
            rows += await repo.list_conversations(tx, shop_id=request.query.get("shop") or None, status=s, limit=200)
        epoch = datetime.min.replace(tzinfo=UTC)
        rows.sort(key=lambda cb: (cb[0].last_buyer_at or epoch, cb[0].id), reverse=True)
        for conv, buyer in rows:
            last = await repo.messages_of(tx, conv.id, limit=3)
            items.append(conversation_json(conv, buyer) | {"last_messages": [message_json(m) for m in last]})
    return json_response({"now": request.app[clock_key].now().isoformat(), "conversations": items})


async def _conversation(request: web.Request, tx: repo.Tx) -> tuple[Any, Buyer]:
    conv_id = _path_id(request)
    pair = await repo.conversation_with_buyer(tx, conv_id)
    if pair is None:
        raise NotFound(f"no conversation {conv_id}")
    return pair


def _text(data: dict[str, Any], name: str, limit: int, *, required: bool = True) -> str:
    value = data.get(name, "")
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise MalformedEvent(name, f"{'required: ' if required else ''}a string of at most {limit} characters")
    return value.strip()


async def reply(request: web.Request) -> web.Response:
    """POST /api/conversations/{id}/reply {"text"}: the agent's own words; open suggestions are superseded."""
    text = _text(await _json_body(request), "text", 2000)
    now = request.app[clock_key].now()
    async with request.app[db_key].transaction() as tx:
        conv, buyer = await _conversation(request, tx)
        reply_id = await send_reply(tx, conv, buyer, text, in_reply_to=None, author="agent", now=now)
        await repo.supersede_pending(tx, conv.id, now)
        await followups.on_agent_reply(tx, conv.id, now)
        conv.status = "open"
    request.app[outbox_key].wake()
    return json_response({"conversation": conv.id, "reply_id": reply_id, "by": _identity(request).name})


async def escalate(request: web.Request) -> web.Response:
    """POST /api/conversations/{id}/escalate {"reason"}: hand the conversation to a supervisor."""
    reason = _text(await _json_body(request), "reason", 500)
    now = request.app[clock_key].now()
    async with request.app[db_key].transaction() as tx:
        conv, _ = await _conversation(request, tx)
        conv.status = "escalated"
        remark = await console_repo.add_remark(tx, conversation_id=conv.id, order_id=None, kind="escalation",
                                               text=reason, author=_identity(request).name, now=now)
        body = {"conversation": conv.id, "status": conv.status, "remark": remark_json(remark)}
    return json_response(body)


def remark_json(r: Remark) -> dict[str, Any]:
    # The seeds' remark format: reason, who, when (shop staff read it across shifts).
    line = f"{r.text}（{r.author} {r.created_at.astimezone(ZoneInfo('Asia/Shanghai')):%Y-%m-%d %H:%M}）"
    return {"id": r.id, "kind": r.kind, "text": r.text, "by": r.author, "at": r.created_at.isoformat(),
            "order_id": r.order_id, "line": line}


async def add_remark(request: web.Request) -> web.Response:
    """POST /api/conversations/{id}/remarks {"text", "order_id"?}: an internal note for the next shift."""
    data = await _json_body(request)
    text = _text(data, "text", 500)
    order_ext = data.get("order_id")
    now = request.app[clock_key].now()
    async with request.app[db_key].transaction() as tx:
        conv, buyer = await _conversation(request, tx)
        order_id = None
        if order_ext is not None:
            order = (await tx.execute(select(Order).where(Order.shop_id == conv.shop_id,
                                                          Order.external_id == str(order_ext)))).scalar_one_or_none()
            if order is None or order.buyer_id != buyer.id:
                raise NotFound(f"no order {str(order_ext)[:64]} for this buyer")
            order_id = order.id
        remark = await console_repo.add_remark(tx, conversation_id=conv.id, order_id=order_id, kind="remark",
                                               text=text, author=_identity(request).name, now=now)
        body = remark_json(remark)
    return json_response(body)


async def orders_panel(request: web.Request) -> web.Response:
    """GET /api/conversations/{id}/orders: the buyer's orders, their reminders, and the remarks."""
    async with request.app[db_key].read() as tx:
        conv, buyer = await _conversation(request, tx)
        orders = list((await tx.execute(select(Order).where(Order.buyer_id == buyer.id)
                                        .order_by(Order.id.desc()).limit(20))).scalars())
        out = []
        for o in orders:
            reminders = await reminders_repo.order_reminders(tx, o.id)
            out.append({"id": o.external_id, "status": o.status, "amount": o.amount, "items": o.items,
                        "ordered_at": _iso(o.ordered_at), "auto_close_at": _iso(o.auto_close_at),
                        "reminders": [{"kind": r.kind, "stage": r.stage, "due_at": _iso(r.due_at),
                                       "status": r.status, "reason": r.reason} for r in reminders]})
        remarks = await console_repo.remarks_of(tx, conv.id, [o.id for o in orders])
    ids = {o.id: o.external_id for o in orders}
    return json_response({"orders": out, "remarks": [remark_json(r) | {"order_id": ids.get(r.order_id or -1)}
                                                     for r in remarks]})


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def blacklist_list(request: web.Request) -> web.Response:
    """GET /api/blacklist?shop=: blacklisted buyers, with why, who and when."""
    query = select(Buyer).where(Buyer.blacklisted_at.is_not(None)).order_by(Buyer.blacklisted_at.desc()).limit(500)
    if request.query.get("shop"):
        query = query.where(Buyer.shop_id == request.query["shop"])
    async with request.app[db_key].read() as tx:
        buyers = list((await tx.execute(query)).scalars())
    return json_response({"buyers": [{"shop": b.shop_id, "buyer": b.external_id, "nick": b.nick,
                                      "reason": b.blacklist_reason, "by": b.blacklisted_by,
                                      "at": _iso(b.blacklisted_at)} for b in buyers]})


# --- KPIs and metrics ------------------------------------------------------------------------------


def _kpi_window(request: web.Request) -> tuple[str | None, datetime, datetime]:
    """?shop=&from=&to=: dates are whole days in the shop's time zone (`to` inclusive), or ISO instants."""
    settings = request.app[settings_key]
    shop = request.query.get("shop") or None
    if shop is not None and settings.shop(shop) is None:
        raise MalformedEvent("shop", f"unknown shop; configured: {', '.join(sorted(settings.shops))}")
    shop_settings = settings.shop(shop) if shop else next(iter(settings.shops.values()), None)
    tz = ZoneInfo(shop_settings.hours.timezone if shop_settings else "UTC")
    now = request.app[clock_key].now()

    def parse(name: str, default: datetime, *, end: bool) -> datetime:
        raw = request.query.get(name)
        if not raw:
            return default
        try:
            if len(raw) == 10:
                day = date.fromisoformat(raw) + timedelta(days=1 if end else 0)
                return datetime.combine(day, datetime.min.time(), tz)
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise MalformedEvent(name, "a date (YYYY-MM-DD) or an ISO instant") from None
        return value if value.tzinfo else value.replace(tzinfo=tz)

    end = parse("to", now + timedelta(seconds=1), end=True)
    start = parse("from", end - timedelta(days=7), end=False)
    if start >= end:
        raise MalformedEvent("from", "must be before to")
    return shop, start, end


async def kpis_api(request: web.Request) -> web.Response:
    """GET /api/kpis?shop=&from=&to=[&format=csv]"""
    shop, start, end = _kpi_window(request)
    async with request.app[db_key].read() as tx:
        figures = await kpis.compute(tx, shop=shop, start=start, end=end)
    if request.query.get("format") == "csv":
        resp = web.Response(text=kpis.to_csv(figures), content_type="text/csv", charset="utf-8")
        resp.headers["Content-Disposition"] = f'attachment; filename="csbot-kpis-{start:%Y%m%d}-{end:%Y%m%d}.csv"'
        return resp
    return json_response(kpis.to_json(figures))


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format. Database-backed gauges are read now."""
    shops = request.app[settings_key].shops
    async with request.app[db_key].read() as tx:
        outbox = await repo.outbox_depth(tx)
        reminders = (await reminders_repo.stats(tx)).by_status
        open_cases = await cases_repo.list_cases(tx, settings_for=dict(shops), now=request.app[clock_key].now(),
                                                 limit=cases_repo.QUEUE_LIMIT)
    counts = CaseCounts(tuple(shops), Counter(v.case.shop_id for v in open_cases),
                        Counter((v.case.shop_id, b) for v in open_cases for b in v.standing.breaches))
    m = request.app[metrics_key]
    m.set_gauges(outbox, reminders, request.app[hub_key].listeners, counts)
    return m.render()


# --- charts: inline SVG, drawn on the server (no script, no CDN) -----------------------------------


def bar_chart(rows: list[tuple[str, float]], *, unit: str = "", lines: tuple[tuple[float, str], ...] = (),
              width: int = 420, max_value: float | None = None) -> str:
    """Pure: horizontal bars with optional vertical marker lines (e.g. the 26 s / 40 s targets)."""
    from html import escape

    if not rows:
        return ""
    bar_h, gap, label_w = 22, 6, 120
    top = max([v for _, v in rows] + [v for v, _ in lines] + [max_value or 0.0, 1e-9])
    plot_w = width - label_w - 60
    height = len(rows) * (bar_h + gap) + gap
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">']
    for i, (label, value) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        w = max(1.0, plot_w * value / top)
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" class="bar"/>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 15}">{value:g}{escape(unit)}</text>')
    for value, css in lines:
        x = label_w + plot_w * value / top
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height}" class="{css}"/>')
    parts.append("</svg>")
    return "".join(parts)


def kpi_charts(k: kpis.Kpis) -> dict[str, str]:
    fr = k.first_response
    times = [(name, value) for name, value in (("avg", fr.avg), ("p90", fr.p90), ("max", fr.max)) if value is not None]
    return {
        "first_response": bar_chart(times, unit="s", lines=((kpis.TARGET_AVG, "amber"), (kpis.TARGET_MAX, "red"))),
        "acceptance": bar_chart([(a.intent, round(100 * (a.rate or 0), 1)) for a in k.acceptance], unit="%",
                                max_value=100),
        "aftersales": bar_chart([(intent, float(n)) for intent, n in k.aftersales.items()]),
    }

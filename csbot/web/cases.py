"""Web: after-sales cases for agents. The priority queue, a case with its history, its moves (transition, note,
assign, flags, blacklist), the quality report for purchasing / QC, and the two console pages. Thin handlers:
the rules are in `aftersales/cases.py`, the queries in `aftersales/repo.py`."""

from __future__ import annotations

from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from csbot.aftersales import cases, report
from csbot.aftersales import repo as cases_repo
from csbot.config import ShopSettings
from csbot.console import auth, i18n
from csbot.console import repo as console_repo
from csbot.console.views import _boot, _identity, _kpi_window, _page, _text, remark_json
from csbot.errors import MalformedEvent, NotFound
from csbot.keys import clock_key, db_key, settings_key
from csbot.store.db import Tx
from csbot.store.models import Case, CaseEvent, Reminder
from csbot.web.api import _int_param, _iso, _json_body, _path_id
from csbot.web.middlewares import json_response

STATE_FILTERS = ("open", "all", *cases.STATES)


def _shops(request: web.Request) -> dict[str, ShopSettings]:
    return dict(request.app[settings_key].shops)


def _shop(request: web.Request, case: Case) -> ShopSettings:
    settings = request.app[settings_key]
    return settings.shop(case.shop_id) or next(iter(settings.shops.values()))


def _lang(request: web.Request) -> str:
    return i18n.pick(request.query.get("lang"), request.cookies.get("csbot_lang"),
                     request.app[settings_key].console.locale)


def case_json(view: cases_repo.CaseView, locale: str) -> dict[str, Any]:
    c, s, order = view.case, view.standing, view.order
    return {
        "id": c.id, "shop": c.shop_id, "type": c.type, "type_label": cases.type_label(c.type, locale),
        "reason": c.reason, "reason_label": cases.reason_label(c.reason, locale), "state": c.state,
        "owner": c.owner, "source": c.source,
        "buyer": {"id": view.buyer_external_id, "nick": view.buyer_nick, "blacklisted": view.buyer_blacklisted},
        "conversation": c.conversation_id, "conversation_id": view.conversation_external_id,
        "order": None if order is None else {
            "id": order.external_id, "status": order.status, "items": order.items, "amount": order.amount,
            "paid_at": _iso(order.paid_at), "shipped_at": _iso(order.shipped_at),
            "refund_requested_at": _iso(order.refund_requested_at),
            "platform_intervened_at": _iso(order.platform_intervened_at)},
        "flags": {"platform_intervened": view.facts.platform_intervened, "late_shipment": s.late_shipment,
                  "out_of_stock": c.out_of_stock},
        "photos": c.photos or [], "resolution": c.resolution,
        "opened_at": _iso(c.opened_at), "reply_due_at": _iso(c.reply_due_at),
        "first_reply_at": _iso(view.facts.first_reply_at), "resolve_due_at": _iso(s.resolve_due_at),
        "next_deadline": _iso(s.next_deadline), "breaches": list(s.breaches), "ended_at": _iso(c.ended_at),
        "updated_at": _iso(c.updated_at),
    }


def event_json(e: CaseEvent) -> dict[str, Any]:
    return {"id": e.id, "kind": e.kind, "from": e.from_state, "to": e.to_state, "note": e.note, "by": e.actor,
            "at": _iso(e.at)}


def followup_json(r: Reminder) -> dict[str, Any]:
    return {"id": r.id, "kind": r.kind, "due_at": _iso(r.due_at), "status": r.status, "reason": r.reason}


def _choice(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query.get(name) or None
    if value is not None and value not in allowed:
        raise MalformedEvent(name, f"one of {', '.join(allowed)}")
    return value


# --- reading ----------------------------------------------------------------------------------------


async def list_cases(request: web.Request) -> web.Response:
    """GET /api/cases?state=open|all|<state>&type=&owner=&shop=&limit=: the priority queue, most urgent first."""
    state = _choice(request, "state", STATE_FILTERS) or "open"
    states = cases.OPEN_STATES if state == "open" else cases.STATES if state == "all" else (state,)
    now = request.app[clock_key].now()
    async with request.app[db_key].read() as tx:
        views = await cases_repo.list_cases(
            tx, settings_for=_shops(request), now=now, shop_id=request.query.get("shop") or None, states=states,
            type=_choice(request, "type", cases.TYPES), owner=request.query.get("owner") or None,
            limit=_int_param(request, "limit", 200, 1000))
    breaches = Counter(b for v in views for b in v.standing.breaches)
    return json_response({
        "now": now.isoformat(),
        "cases": [case_json(v, _lang(request)) | {"rank": i} for i, v in enumerate(views, start=1)],
        # deadlines missed among the listed cases: the KPI the console's badge shows
        "breaches": {"reply": breaches["reply"], "resolve": breaches["resolve"],
                     "cases": sum(1 for v in views if v.standing.breaches)},
        "states": dict(Counter(v.case.state for v in views)),
    })


async def _detail(request: web.Request, tx: Tx, case_id: int) -> dict[str, Any]:
    detail = await cases_repo.case_detail(tx, case_id, settings_for=_shops(request),
                                          now=request.app[clock_key].now())
    if detail is None:
        raise NotFound(f"no case {case_id}")
    return case_json(detail.view, _lang(request)) | {
        "history": [event_json(e) for e in detail.events],
        "notes": [event_json(e) for e in detail.events if e.kind == "note"],
        "remarks": [remark_json(r) for r in detail.remarks],
        "follow_ups": [followup_json(r) for r in detail.follow_ups],
    }


async def get_case(request: web.Request) -> web.Response:
    """GET /api/cases/{id}: the case with its history, notes, photos, order remarks and follow-ups."""
    case_id = _path_id(request)
    async with request.app[db_key].read() as tx:
        body = await _detail(request, tx, case_id)
    return json_response(body)


# --- moves ------------------------------------------------------------------------------------------


async def _locked(request: web.Request, tx: Tx) -> Case:
    case_id = _path_id(request)
    case = await cases_repo.case_for_update(tx, case_id)
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def _optional_text(data: dict[str, Any], name: str, limit: int) -> str | None:
    if data.get(name) is None:
        return None
    return _text(data, name, limit, required=False) or None


async def transition(request: web.Request) -> web.Response:
    """POST /api/cases/{id}/transition {"to", "note"?, "resolution"?, "reason"?}: resolved / closed need a
    resolution (400 naming the field); a move the state machine does not allow is 409."""
    data = await _json_body(request)
    to = data.get("to")
    if not isinstance(to, str) or not to:
        raise MalformedEvent("to", f"required: one of {', '.join(cases.STATES)}")
    note = _optional_text(data, "note", cases.MAX_TEXT)
    resolution = _optional_text(data, "resolution", cases.MAX_TEXT)
    reason = data.get("reason")
    if reason is not None and reason not in cases.REASONS:
        raise MalformedEvent("reason", f"one of {', '.join(cases.REASONS)}")
    now = request.app[clock_key].now()
    async with request.app[db_key].transaction() as tx:
        case = await _locked(request, tx)
        await cases_repo.transition(tx, case, _shop(request, case), to=to, actor=_identity(request).name, now=now,
                                    note=note, resolution=resolution, reason=reason)
        body = await _detail(request, tx, case.id)
    return json_response(body)


async def add_note(request: web.Request) -> web.Response:
    """POST /api/cases/{id}/notes {"text"}: an internal note in the case's history."""
    text = _text(await _json_body(request), "text", cases.MAX_TEXT)
    now = request.app[clock_key].now()
    async with request.app[db_key].transaction() as tx:
        case = await _locked(request, tx)
        await cases_repo.add_note(tx, case, text=text, actor=_identity(request).name, now=now)
        body = await _detail(request, tx, case.id)
    return json_response(body)


async def assign(request: web.Request) -> web.Response:
    """POST /api/cases/{id}/assign {"owner"?}: an agent takes a case (owner = themselves); a supervisor may
    give it to any console user."""
    me = _identity(request)
    data = await _json_body(request)
    owner = _text(data, "owner", 64) if data.get("owner") is not None else me.name
    now = request.app[clock_key].now()
    async with request.app[db_key].transaction() as tx:
        if owner != me.name:
            auth.require_supervisor(me)
            if await console_repo.user_by_name(tx, owner) is None:
                raise MalformedEvent("owner", "no console user of that name (csbot users list)")
        case = await _locked(request, tx)
        await cases_repo.assign(tx, case, owner=owner, actor=me.name, now=now)
        body = await _detail(request, tx, case.id)
    return json_response(body)


async def set_flags(request: web.Request) -> web.Response:
    """POST /api/cases/{id}/flags {"platform_intervened"?, "late_shipment"?, "out_of_stock"?}: the queue's
    priority flags (e.g. the platform stepped into the refund: 小二介入)."""
    data = await _json_body(request)
    flags: dict[str, bool] = {}
    for name in cases_repo.FLAGS:
        if name in data:
            if not isinstance(data[name], bool):
                raise MalformedEvent(name, "true or false")
            flags[name] = data[name]
    if not flags:
        raise MalformedEvent("body", f"at least one of {', '.join(cases_repo.FLAGS)}")
    now = request.app[clock_key].now()
    async with request.app[db_key].transaction() as tx:
        case = await _locked(request, tx)
        await cases_repo.set_flags(tx, case, flags, actor=_identity(request).name, now=now)
        body = await _detail(request, tx, case.id)
    return json_response(body)


async def blacklist(request: web.Request) -> web.Response:
    """POST /api/cases/{id}/blacklist {"reason"}: blacklist the case's buyer (abuse, malicious bad reviews,
    returns without cause); only a supervisor lifts it (DELETE /api/shops/{shop}/buyers/{buyer}/blacklist)."""
    reason = _text(await _json_body(request), "reason", 500)
    now = request.app[clock_key].now()
    async with request.app[db_key].transaction() as tx:
        case = await _locked(request, tx)
        buyer = await cases_repo.blacklist_buyer(tx, case, _shop(request, case), reason=reason,
                                                 actor=_identity(request).name, now=now)
        body = await _detail(request, tx, case.id) | {
            "blacklist": {"buyer": buyer.external_id, "reason": buyer.blacklist_reason, "by": buyer.blacklisted_by,
                          "at": _iso(buyer.blacklisted_at)}}
    return json_response(body)


# --- the quality report -----------------------------------------------------------------------------


async def _report(request: web.Request) -> tuple[report.Report, str]:
    auth.require_supervisor(_identity(request))
    shop, start, end = _kpi_window(request)
    settings = request.app[settings_key]
    shop_settings = settings.shop(shop) if shop else next(iter(settings.shops.values()), None)
    zone = ZoneInfo(shop_settings.hours.timezone if shop_settings else "UTC")
    async with request.app[db_key].read() as tx:
        rows = await cases_repo.report_rows(tx, start=start - (end - start), end=end, shop_id=shop)
    return report.build(rows, start=start, end=end, zone=zone), _lang(request)


async def report_api(request: web.Request) -> web.Response:
    """GET /api/cases/report?from=&to=&shop=[&format=csv] (supervisors): quality problems and return reasons
    per product and reason, weekly, against the previous period of the same length."""
    built, lang = await _report(request)
    if request.query.get("format") == "csv":
        resp = web.Response(text=report.to_csv(built, lang), content_type="text/csv", charset="utf-8")
        resp.headers["Content-Disposition"] = (f'attachment; filename="csbot-quality-{built.start:%Y%m%d}-'
                                               f'{built.end:%Y%m%d}.csv"')
        return resp
    return json_response(report.to_json(built, lang))


# --- console pages ----------------------------------------------------------------------------------


async def cases_page(request: web.Request) -> web.Response:
    """GET /console/cases: the after-sales queue (cases.js fetches /api/cases)."""
    boot = _boot(request) | {"states": list(cases.STATES), "types": list(cases.TYPES),
                             "reasons": {code: cases.reason_label(code, _lang(request)) for code in cases.REASONS}}
    return _page(request, "cases.html", boot=boot, me=_identity(request))


async def report_page(request: web.Request) -> web.Response:
    """GET /console/cases/report (supervisors): the quality report as a table, with its CSV export."""
    built, lang = await _report(request)
    query = request.query_string
    return _page(request, "cases_report.html", r=report.to_json(built, lang), me=_identity(request),
                 csv_url="/api/cases/report?format=csv" + (f"&{query}" if query else ""),
                 form={"shop": request.query.get("shop", ""), "from": request.query.get("from", ""),
                       "to": request.query.get("to", "")})

"""Web: every URL csbot serves, in one list."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from csbot.console import learn, views
from csbot.keys import db_key
from csbot.web import api, cases, reminders, restock, reviews, webhooks
from csbot.web.middlewares import json_response


async def healthz(request: web.Request) -> web.Response:
    async with request.app[db_key].read() as tx:
        await tx.execute(text("SELECT 1"))
    return json_response({"status": "ok"})


def setup_routes(app: web.Application) -> None:
    app.router.add_routes([
        web.get("/healthz", healthz),
        web.post("/webhooks/{channel}", webhooks.channel_webhook),
        web.get("/webhooks/wecom", webhooks.wecom_url_check),
        web.get("/api/conversations", api.list_conversations),
        web.get("/api/conversations/{id}", api.get_conversation),
        web.post("/api/suggestions/{id}/accept", api.accept),
        web.post("/api/suggestions/{id}/reject", api.reject),
        web.get("/api/outbox", api.list_outbox),
        web.post("/api/shops/{shop}/buyers/{buyer}/blacklist", api.blacklist),
        web.delete("/api/shops/{shop}/buyers/{buyer}/blacklist", api.blacklist),
        web.get("/api/reminders", reminders.list_reminders),
        web.get("/api/reminders/stats", reminders.reminder_stats),
        web.post("/api/orders/{id}/reminders/cancel", reminders.cancel_order_reminders),
        # after-sales cases (csbot/aftersales): the priority queue, one case and its moves, the quality report
        web.get("/api/cases", cases.list_cases),
        web.get("/api/cases/report", cases.report_api),
        web.get("/api/cases/{id}", cases.get_case),
        web.post("/api/cases/{id}/transition", cases.transition),
        web.post("/api/cases/{id}/notes", cases.add_note),
        web.post("/api/cases/{id}/assign", cases.assign),
        web.post("/api/cases/{id}/flags", cases.set_flags),
        web.post("/api/cases/{id}/blacklist", cases.blacklist),
        web.get("/console/cases", cases.cases_page),
        web.get("/console/cases/report", cases.report_page),
        web.get("/api/restock/waitlist", restock.list_waitlist),
        web.post("/api/restock/waitlist", restock.add_to_waitlist),
        web.get("/api/restock/proposals", restock.proposals),
        web.get("/api/reviews", reviews.list_reviews),
        web.post("/api/reviews/{id}/reply", reviews.reply),
        web.post("/api/reviews/{id}/reject", reviews.reject),
        web.get("/console/reviews", reviews.reviews_page),
        # the agents' console (csbot/console/): pages, live socket, and the JSON it uses
        web.get("/metrics", views.metrics),
        web.get("/console/login", views.login_page),
        web.post("/console/login", views.login),
        web.post("/console/logout", views.logout),
        web.get("/console", views.console_page),
        web.get("/console/kpis", views.kpis_page),
        web.get("/console/supervisor", views.supervisor_page),
        web.get("/console/ws", views.socket),
        web.static("/console/static", views.STATIC_DIR),
        web.get("/api/queue", views.queue),
        web.post("/api/conversations/{id}/reply", views.reply),
        web.post("/api/conversations/{id}/escalate", views.escalate),
        web.get("/api/conversations/{id}/orders", views.orders_panel),
        web.post("/api/conversations/{id}/remarks", views.add_remark),
        web.get("/api/blacklist", views.blacklist_list),
        web.get("/api/kpis", views.kpis_api),
        web.get("/api/learn/proposals", learn.proposals_api),
        web.post("/api/learn/proposals/approve", learn.approve_api),
    ])

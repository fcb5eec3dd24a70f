"""Console: the UI's words in zh-CN (default) and en. Pure data; the page picks one with ?lang=."""

from __future__ import annotations

LOCALES = ("zh-CN", "en")

STRINGS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "客服工作台", "login": "登录", "logout": "退出", "name": "账号", "password": "密码",
        "login_failed": "账号或密码错误", "queue": "待回复", "empty_queue": "暂无等待回复的会话",
        "pick": "请从左侧选择一个会话", "suggestions": "推荐回复",
        "accept_hint": "按 1/2/3 或回车发送，E 编辑，R 拒绝，W 到货通知",
        "send": "发送", "edit": "编辑", "reject": "拒绝", "reject_reason": "拒绝原因", "free_text": "自己回复…",
        "escalate": "转主管", "escalate_reason": "转主管原因（砍价超限、投诉…）", "blacklist": "拉黑",
        "blacklist_reason": "拉黑原因", "orders": "订单", "reminders": "提醒", "remarks": "备注",
        "add_remark": "添加备注", "no_orders": "暂无订单", "score": "匹配度", "intent": "意图",
        "waiting": "等待", "escalated": "已转主管", "live": "实时", "offline": "重连中…", "kpis": "数据看板",
        "supervisor": "主管", "escalations": "转主管的会话", "blacklisted": "黑名单", "proposals": "话术库建议",
        "approve": "采纳", "sent": "已发送", "first_response": "首次响应时间", "reply_rate": "回复率",
        "acceptance": "推荐采纳率", "auto_share": "自动发送占比", "conversion": "询单转化率",
        "recovery": "催付挽回率", "aftersales": "售后会话（按原因）", "csv": "导出 CSV", "seconds": "秒",
        "avg": "平均", "max": "最长", "within": "以内", "lift": "解除", "buyer": "买家", "by": "操作人",
        "at": "时间", "reason": "原因", "console": "工作台", "apply": "查询", "no_data": "暂无数据",
        "restock_pick": "到货通知（W）：输入序号，或直接输入 SKU 编号", "restock_added": "已登记，到货后通知买家一次",
        "restock_failed": "登记失败：",
        # after-sales cases (/console/cases, /console/cases/report)
        "cases": "售后工单", "case_report": "质量反馈", "no_cases": "暂无售后工单", "state": "状态", "type": "类型",
        "owner": "负责人", "deadline": "截止", "breach": "超时", "breach_reply": "回复超时",
        "breach_resolve": "处理超时",
        "flags": "优先标记", "platform_intervened": "小二介入", "late_shipment": "未按时发货", "out_of_stock": "缺货",
        # reviews (/console/reviews)
        "reviews": "评价回复", "review_pending": "待回复", "review_sent": "已回复", "review_rejected": "不回复",
        "no_reviews": "暂无评价", "publish_reply": "发布回复", "topics": "问题", "case": "工单",
        "needs_edit": "草稿没能概括这条评价，请改写后再发布",
        "history": "处理记录", "photos": "图片", "resolution": "处理结果", "move": "更新状态", "note": "内部备注",
        "take": "我来处理", "product": "商品", "count": "本期", "previous": "上期", "change": "变化", "all": "全部",
        "open_cases": "未完结", "state_new": "新建", "state_in_progress": "处理中", "state_waiting_buyer": "等买家",
        "state_waiting_warehouse": "等仓库", "state_resolved": "已解决", "state_closed": "已关闭",
    },
    "en": {
        "title": "Agent console", "login": "Log in", "logout": "Log out", "name": "User", "password": "Password",
        "login_failed": "Wrong user name or password", "queue": "Waiting", "empty_queue": "Nobody is waiting",
        "pick": "Pick a conversation on the left", "suggestions": "Suggestions",
        "accept_hint": "1/2/3 or Enter sends, E edits, R rejects, W restock notice", "send": "Send", "edit": "Edit",
        "reject": "Reject", "reject_reason": "Why reject?", "free_text": "Write your own reply…",
        "escalate": "Escalate", "escalate_reason": "Why escalate (bargain beyond ceiling, complaint…)?",
        "blacklist": "Blacklist", "blacklist_reason": "Why blacklist?", "orders": "Orders",
        "reminders": "Reminders", "remarks": "Remarks", "add_remark": "Add remark", "no_orders": "No orders",
        "score": "score", "intent": "intent", "waiting": "waiting", "escalated": "escalated", "live": "live",
        "offline": "reconnecting…", "kpis": "KPIs", "supervisor": "Supervisor", "escalations": "Escalations",
        "blacklisted": "Blacklist", "proposals": "Library proposals", "approve": "Approve", "sent": "Sent",
        "first_response": "First response", "reply_rate": "Reply rate", "acceptance": "Suggestion acceptance",
        "auto_share": "Auto-sent share", "conversion": "Inquiry → order", "recovery": "催付 recovery",
        "aftersales": "After-sales conversations by reason", "csv": "Export CSV", "seconds": "s", "avg": "avg",
        "max": "max", "within": "within", "lift": "Lift", "buyer": "Buyer", "by": "By", "at": "At",
        "reason": "Reason", "console": "Console", "apply": "Apply", "no_data": "No data",
        "restock_pick": "Restock notice (W): type a number from the list, or a SKU id",
        "restock_added": "On the waiting list: one notice when it is back", "restock_failed": "Not added:",
        "cases": "After-sales cases", "case_report": "Quality report", "no_cases": "No after-sales cases",
        "state": "State", "type": "Type", "owner": "Owner", "deadline": "Deadline", "breach": "late",
        "breach_reply": "reply late", "breach_resolve": "resolution late", "flags": "Priority flags",
        "platform_intervened": "Platform stepped in", "late_shipment": "Late shipment", "out_of_stock": "Out of stock",
        "reviews": "Reviews", "review_pending": "Awaiting reply", "review_sent": "Replied",
        "review_rejected": "Not replied", "no_reviews": "No reviews", "publish_reply": "Publish reply",
        "topics": "Topics", "case": "Case",
        "needs_edit": "The draft could not sum up this review: rewrite it before publishing",
        "history": "History", "photos": "Photos", "resolution": "Resolution", "move": "Move", "note": "Internal note",
        "take": "Take it", "product": "Product", "count": "This period", "previous": "Previous", "change": "Change",
        "all": "All", "open_cases": "Open", "state_new": "new", "state_in_progress": "in progress",
        "state_waiting_buyer": "waiting for buyer", "state_waiting_warehouse": "waiting for warehouse",
        "state_resolved": "resolved", "state_closed": "closed",
    },
}


def pick(query_lang: str | None, cookie_lang: str | None, default: str) -> str:
    for lang in (query_lang, cookie_lang, default):
        if lang in LOCALES:
            return lang
    return "zh-CN"

// csbot console: live queue (WebSocket with reconnect), conversation view, one-keystroke replies.
// No framework, no build step, no CDN. Text from buyers is only ever set through textContent.
"use strict";
(function () {
  const { boot, t, $, api, el } = window.csbot;
  let queue = [];
  let openId = null;
  let current = null; // the open conversation's detail
  let selected = 0; // index of the highlighted suggestion
  let editing = null; // suggestion id being edited
  let offset = 0; // server clock - browser clock, in ms



  function score(v) { return v === null || v === undefined ? "–" : Number(v).toFixed(1); }

  async function loadQueue() {
    const data = await api("/api/queue");
    offset = Date.parse(data.now) - Date.now();
    queue = data.conversations;
    const list = $("queue");
    list.replaceChildren();
    for (const c of queue) {
      const li = el("li", "item" + (c.id === openId ? " open" : "") + (c.status === "escalated" ? " escalated" : ""));
      li.dataset.id = c.id;
      const head = el("div", "head");
      head.append(el("strong", "nick", c.buyer.nick || c.buyer.id));
      const timer = el("span", "timer");
      timer.dataset.since = c.last_buyer_at || "";
      head.append(timer);
      li.append(head);
      const last = c.last_messages.filter((m) => m.direction === "in").slice(-2);
      for (const m of last) li.append(el("div", "snippet", m.text));
      li.append(el("div", "meta", (c.last_intent || "–") + " · " + t.score + " " + score(c.last_score) +
        (c.status === "escalated" ? " · " + t.escalated : "")));
      li.addEventListener("click", () => openConversation(c.id));
      list.append(li);
    }
    $("queue-empty").hidden = queue.length > 0;
    tick();
    if (openId === null && queue.length > 0) await openConversation(queue[0].id);
    else if (openId !== null) await openConversation(openId, true);
  }

  async function openConversation(id, refresh) {
    const changed = openId !== id;
    openId = id;
    if (changed) { selected = 0; editing = null; }
    current = await api("/api/conversations/" + id);
    for (const li of $("queue").children) li.classList.toggle("open", Number(li.dataset.id) === id);
    $("pick").hidden = true;
    $("open").hidden = false;
    $("conv-title").textContent = (current.buyer.nick || current.buyer.id) + " · " + current.shop +
      (current.buyer.blacklisted ? " · ⛔" : "");
    const msgs = $("messages");
    msgs.replaceChildren();
    for (const m of current.messages.slice(-20)) {
      const li = el("li", m.direction === "in" ? "in" : "out " + m.author, m.text);
      if (m.direction === "in" && m.intent) li.append(el("small", "muted", " " + m.intent + " " + score(m.score)));
      msgs.append(li);
    }
    msgs.scrollTop = msgs.scrollHeight;
    if (!refresh || editing === null) renderSuggestions();
    $("remark-form").hidden = false;
    loadOrders(id);
  }

  function renderSuggestions() {
    const list = $("suggestions");
    list.replaceChildren();
    current.suggestions.forEach((s, i) => {
      const li = el("li", "suggestion" + (i === selected ? " selected" : ""));
      li.dataset.id = s.id;
      li.append(el("kbd", null, String(i + 1)));
      if (editing === s.id) {
        const area = el("textarea", "edit");
        area.value = s.text;
        area.rows = 3;
        area.addEventListener("keydown", (ev) => {
          if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); accept(s, area.value); }
          if (ev.key === "Escape") { editing = null; renderSuggestions(); }
        });
        li.append(area);
        setTimeout(() => area.focus(), 0);
      } else {
        li.append(el("span", "text", s.text));
      }
      li.append(el("small", "muted", " " + (s.intent || "–") + " " + score(s.score)));
      const buttons = el("span", "buttons");
      const send = el("button", null, t.send);
      send.addEventListener("click", () => accept(s, editing === s.id ? li.querySelector("textarea").value : null));
      const edit = el("button", null, t.edit);
      edit.addEventListener("click", () => { editing = s.id; selected = i; renderSuggestions(); });
      const reject = el("button", null, t.reject);
      reject.addEventListener("click", () => rejectSuggestion(s));
      buttons.append(send, edit, reject);
      li.append(buttons);
      list.append(li);
    });
  }

  async function accept(s, text) {
    const body = text !== null && text !== undefined && text !== s.text ? { text: text } : {};
    editing = null;
    await api("/api/suggestions/" + s.id + "/accept", body);
    flash(t.sent);
    await loadQueue();
  }

  async function rejectSuggestion(s) {
    const reason = prompt(t.reject_reason);
    if (reason === null) return;
    await api("/api/suggestions/" + s.id + "/reject", { reason: reason });
    await openConversation(openId);
  }

  // W: put the buyer on an out-of-stock SKU's waiting list (one notice when it is back). The SKUs that fit the
  // conversation are proposed; the agent types a number from the list, or any SKU id.
  async function addToWaitlist() {
    if (openId === null) return;
    const found = (await api("/api/restock/proposals?conversation_id=" + openId)).skus;
    const lines = found.map((s, i) => (i + 1) + ". " + (s.title || s.sku_id) + " (" + s.sku_id + ")");
    const answer = prompt([t.restock_pick, ...lines].join("\n"), found.length ? "1" : "");
    if (answer === null || !answer.trim()) return;
    const pick = found[Number(answer.trim()) - 1];
    try {
      await api("/api/restock/waitlist", { conversation_id: openId, sku_id: pick ? pick.sku_id : answer.trim() });
      flash(t.restock_added);
    } catch (err) {
      flash(t.restock_failed + " " + err.message);
    }
  }

  function flash(text) {
    const live = $("live");
    live.dataset.flash = text;
    setTimeout(() => { delete live.dataset.flash; }, 1500);
  }

  async function loadOrders(id) {
    const data = await api("/api/conversations/" + id + "/orders");
    const box = $("orders");
    box.replaceChildren();
    if (data.orders.length === 0) box.append(el("p", "muted", t.no_orders));
    for (const o of data.orders) {
      const div = el("div", "order");
      div.append(el("strong", null, o.id + " · " + o.status + (o.amount ? " · ¥" + o.amount : "")));
      const ul = el("ul", "reminders");
      for (const r of o.reminders) {
        ul.append(el("li", r.status, r.kind + " #" + r.stage + " " + r.status + " " + (r.due_at || "").slice(0, 16) +
          (r.reason ? " (" + r.reason + ")" : "")));
      }
      div.append(ul);
      box.append(div);
    }
    const remarks = $("remarks");
    remarks.replaceChildren();
    for (const r of data.remarks) remarks.append(el("li", r.kind, (r.order_id ? "[" + r.order_id + "] " : "") + r.line));
  }

  function tick() {
    const now = Date.now() + offset;
    for (const span of document.querySelectorAll(".timer")) {
      if (!span.dataset.since) continue;
      const secs = Math.max(0, Math.floor((now - Date.parse(span.dataset.since)) / 1000));
      span.textContent = secs < 3600 ? Math.floor(secs / 60) + ":" + String(secs % 60).padStart(2, "0") : ">1h";
      span.classList.toggle("amber", secs >= boot.targets.amber && secs < boot.targets.red);
      span.classList.toggle("red", secs >= boot.targets.red);
    }
  }

  document.addEventListener("keydown", (ev) => {
    const tag = (ev.target && ev.target.tagName) || "";
    if (tag === "TEXTAREA" || tag === "INPUT" || ev.ctrlKey || ev.metaKey || ev.altKey || !current) return;
    const list = current.suggestions;
    if (["1", "2", "3"].includes(ev.key)) {
      const s = list[Number(ev.key) - 1];
      if (s) { ev.preventDefault(); accept(s, null); }
    } else if (ev.key === "Enter" && list[selected]) {
      ev.preventDefault(); accept(list[selected], null);
    } else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      selected = Math.max(0, Math.min(list.length - 1, selected + (ev.key === "ArrowDown" ? 1 : -1)));
      renderSuggestions();
    } else if ((ev.key === "e" || ev.key === "E") && list[selected]) {
      ev.preventDefault(); editing = list[selected].id; renderSuggestions();
    } else if ((ev.key === "r" || ev.key === "R") && list[selected]) {
      ev.preventDefault(); rejectSuggestion(list[selected]);
    } else if (ev.key === "w" || ev.key === "W") {
      ev.preventDefault(); addToWaitlist();
    }
  });

  $("free").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("free-text").value.trim();
    if (!text || openId === null) return;
    await api("/api/conversations/" + openId + "/reply", { text: text });
    $("free-text").value = "";
    flash(t.sent);
    await loadQueue();
  });
  $("free-text").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("free").requestSubmit(); }
  });
  $("escalate").addEventListener("click", async () => {
    const reason = prompt(t.escalate_reason);
    if (reason) { await api("/api/conversations/" + openId + "/escalate", { reason: reason }); await loadQueue(); }
  });
  $("blacklist").addEventListener("click", async () => {
    const reason = prompt(t.blacklist_reason);
    if (!reason || !current) return;
    await api("/api/shops/" + encodeURIComponent(current.shop) + "/buyers/" +
      encodeURIComponent(current.buyer.id) + "/blacklist", { reason: reason });
    await openConversation(openId);
  });
  $("remark-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("remark-text").value.trim();
    if (!text || openId === null) return;
    await api("/api/conversations/" + openId + "/remarks", { text: text });
    $("remark-text").value = "";
    loadOrders(openId);
  });

  // Live updates: the server says "something changed", we refetch. Reconnect with backoff; refetch on
  // every (re)connect and every 30 s, so an event missed while offline (or on another instance) is caught up.
  let delay = 500;
  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/console/ws");
    ws.onopen = () => { delay = 500; $("live").className = "live on"; $("live").textContent = t.live; loadQueue(); };
    ws.onmessage = (ev) => { const msg = JSON.parse(ev.data); if (msg.type === "changed") loadQueue(); };
    ws.onclose = () => {
      $("live").className = "live off"; $("live").textContent = t.offline;
      setTimeout(connect, delay); delay = Math.min(delay * 2, 15000);
    };
  }
  setInterval(tick, 1000);
  setInterval(() => loadQueue().catch(() => {}), 30000);
  loadQueue().catch(() => {});
  connect();
})();

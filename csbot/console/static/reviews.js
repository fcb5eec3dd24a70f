// csbot console: buyers' reviews and their reply drafts. An agent publishes each reply (the draft or an edit
// of it) or decides not to reply; the published text leaves through the outbox. Low ratings also open an
// after-sales case. No framework, no build step, no CDN. Text from buyers is only ever set through textContent.
"use strict";
(function () {
  const { boot, t, $, api, el } = window.csbot;

  function when(iso) { return iso ? new Date(iso).toLocaleString() : "–"; }
  function stars(n) { return "★".repeat(n) + "☆".repeat(Math.max(0, 5 - n)); }
  function showError(err) { $("error").textContent = err.message; }

  function pendingReply(li, r) {
    if (r.reply.needs_edit) li.append(el("p", "warn", t.needs_edit));
    const draft = el("textarea", "draft");
    draft.rows = 3;
    draft.value = r.reply.draft;
    const publish = el("button", "publish", t.publish_reply);
    const reason = el("input", "reason");
    reason.placeholder = t.reject_reason;
    const reject = el("button", "reject", t.reject);
    for (const b of [publish, reject]) b.type = "button";
    publish.addEventListener("click", () => {
      const text = draft.value.trim();
      // The draft as it stands is published as the draft; anything else as the agent's own text.
      decide(li, "/api/reviews/" + r.id + "/reply", text === r.reply.draft.trim() ? {} : { text });
    });
    reject.addEventListener("click", () => decide(li, "/api/reviews/" + r.id + "/reject", { reason: reason.value.trim() }));
    const actions = el("div", "row actions");
    actions.append(publish, reason, reject);
    li.append(draft, actions);
  }

  function decidedReply(li, r) {
    const status = t["review_" + r.reply.status] || r.reply.status;
    li.append(el("p", "meta", status + " · " + (r.reply.decided_by || "–") + " · " + when(r.reply.decided_at)));
    if (r.reply.final_text) li.append(el("blockquote", "reply", r.reply.final_text));
    if (r.reply.reason) li.append(el("p", "muted", t.reason + ": " + r.reply.reason));
  }

  function card(r) {
    const li = el("li", "review" + (r.rating <= 3 ? " low" : ""));
    li.dataset.id = String(r.id);
    const head = el("p", "meta");
    head.append(el("span", "stars", stars(r.rating)), el("span", null, " " + (r.buyer.nick || r.buyer.id) + " · " +
      when(r.created_at) + (r.order_id ? " · " + r.order_id : "")));
    if (r.case_id !== null) {
      const link = el("a", "badge", t.case + " #" + r.case_id);
      link.href = "/console/cases";
      head.append(" ", link);
    }
    li.append(head, el("blockquote", "text", r.text));
    if (r.topics.length) li.append(el("p", "meta", t.topics + ": " + r.topics.map((id) => boot.topics[id] || id).join("、")));
    if (r.reply.status === "pending") pendingReply(li, r);
    else decidedReply(li, r);
    return li;
  }

  async function decide(li, path, body) {
    $("error").textContent = "";
    const buttons = li.querySelectorAll("button");
    for (const b of buttons) b.disabled = true;
    try {
      await api(path, body);
      await load();
    } catch (err) {
      showError(err);
      for (const b of buttons) b.disabled = false;
    }
  }

  async function load() {
    const data = await api("/api/reviews?status=" + encodeURIComponent($("f-status").value));
    $("reviews").replaceChildren(...data.reviews.map(card));
    $("reviews-empty").hidden = data.reviews.length > 0;
  }

  $("filters").addEventListener("submit", (e) => { e.preventDefault(); load().catch(showError); });
  load().catch(showError);
})();

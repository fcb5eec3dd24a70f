// csbot supervisor page: escalations, blacklist, library proposals.
"use strict";
(function () {
  const { boot, t, $, api, el } = window.csbot;
  async function load() {
    const q = await api("/api/queue?status=escalated");
    const esc = $("escalations");
    esc.replaceChildren();
    for (const c of q.conversations) {
      const li = el("li", null, (c.buyer.nick || c.buyer.id) + " · " + (c.last_intent || "–") + " · ");
      const a = el("a", null, t.console);
      a.href = "/console";
      li.append(a);
      esc.append(li);
    }
    const bl = await api("/api/blacklist");
    const body = $("blacklist").querySelector("tbody");
    body.replaceChildren();
    for (const b of bl.buyers) {
      const tr = el("tr");
      for (const v of [(b.nick || b.buyer) + " (" + b.shop + ")", b.reason, b.by, (b.at || "").slice(0, 16)]) tr.append(el("td", null, v));
      const td = el("td");
      const lift = el("button", null, t.lift);
      lift.addEventListener("click", async () => {
        await api("/api/shops/" + encodeURIComponent(b.shop) + "/buyers/" + encodeURIComponent(b.buyer) + "/blacklist", {}, "DELETE");
        load();
      });
      td.append(lift);
      tr.append(td);
      body.append(tr);
    }
    try {
      const p = await api("/api/learn/proposals");
      const ul = $("proposals");
      ul.replaceChildren();
      for (const prop of p.proposals) {
        const li = el("li", prop.kind, prop.kind + " · " + prop.locale + "/" + prop.intent + " · " + prop.text + " (" + prop.evidence + ")");
        if (prop.kind !== "low_acceptance") {
          const b = el("button", null, t.approve);
          b.addEventListener("click", async () => { await api("/api/learn/proposals/approve", { ids: [prop.id] }); load(); });
          li.append(b);
        }
        ul.append(li);
      }
    } catch (e) { /* proposals not available */ }
  }
  load();
})();

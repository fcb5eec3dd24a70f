// csbot console: the after-sales cases queue (priority order from the server) and one case's actions.
// No framework, no build step, no CDN. Text from buyers is only ever set through textContent.
"use strict";
(function () {
  const { boot, t, $, api, el } = window.csbot;
  const FLAGS = ["platform_intervened", "late_shipment", "out_of_stock"];
  let openId = null;


  function when(iso) { return iso ? new Date(iso).toLocaleString() : "–"; }
  function breachBadges(c) {
    return c.breaches.map((b) => el("span", "badge breach", t["breach_" + b] || t.breach));
  }

  async function loadList() {
    const q = new URLSearchParams({ state: $("f-state").value });
    if ($("f-type").value) q.set("type", $("f-type").value);
    if ($("f-owner").value.trim()) q.set("owner", $("f-owner").value.trim());
    const data = await api("/api/cases?" + q.toString());
    const body = $("cases").querySelector("tbody");
    body.replaceChildren();
    for (const c of data.cases) {
      const tr = el("tr", c.id === openId ? "open" : null);
      tr.append(el("td", null, String(c.rank)), el("td", null, c.buyer.nick || c.buyer.id),
        el("td", null, c.type_label), el("td", null, c.reason_label), el("td", null, t["state_" + c.state] || c.state),
        el("td", null, c.owner || "–"));
      const due = el("td", null, when(c.next_deadline) + " ");
      due.append(...breachBadges(c));
      tr.append(due);
      const flags = el("td");
      for (const f of FLAGS) if (c.flags[f]) flags.append(el("span", "badge flag", t[f]));
      tr.append(flags);
      tr.addEventListener("click", () => openCase(c.id));
      body.append(tr);
    }
    $("cases-empty").hidden = data.cases.length > 0;
    const badge = $("breach-badge");
    badge.textContent = t.breach + " " + data.breaches.cases;
    badge.hidden = data.breaches.cases === 0;
  }

  function show(c) {
    $("detail").hidden = false;
    $("d-title").textContent = "#" + c.id + " " + c.type_label + " · " + c.reason_label + " · " + (t["state_" + c.state] || c.state);
    $("d-meta").replaceChildren(el("span", null, (c.buyer.nick || c.buyer.id) + " · " + (c.order ? c.order.id + " " +
      (c.order.items || []).map((i) => i.title).join("、") : "–") + " · " + t.owner + " " + (c.owner || "–") + " · " +
      t.deadline + " " + when(c.next_deadline) + " "), ...breachBadges(c));
    for (const f of FLAGS) $("d-" + f).checked = !!c.flags[f];
    const photos = $("d-photos");
    photos.replaceChildren();
    for (const p of c.photos) {
      const a = el("a", null, p.url);
      a.href = p.url; a.target = "_blank"; a.rel = "noopener noreferrer";
      const li = el("li"); li.append(a); photos.append(li);
    }
    $("d-remarks").replaceChildren(...c.remarks.map((r) => el("li", null, r.line)));
    $("d-followups").replaceChildren(...c.follow_ups.map((f) => el("li", null, f.kind + " · " + when(f.due_at) + " · " + f.status + (f.reason ? " (" + f.reason + ")" : ""))));
    $("d-history").replaceChildren(...c.history.map((e) => el("li", null, when(e.at) + " · " + e.by + " · " + e.kind +
      (e.from || e.to ? " " + (e.from || "") + " → " + (e.to || "") : "") + (e.note ? " · " + e.note : ""))));
  }

  async function openCase(id) {
    openId = id;
    $("d-error").textContent = "";
    show(await api("/api/cases/" + id));
  }

  async function act(path, body) {
    $("d-error").textContent = "";
    try {
      show(await api("/api/cases/" + openId + path, body));
      await loadList();
    } catch (e) { $("d-error").textContent = e.message; }
  }

  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); loadList(); });
  $("d-take").addEventListener("click", () => act("/assign", {}));
  for (const f of FLAGS) $("d-" + f).addEventListener("change", (ev) => act("/flags", { [f]: ev.target.checked }));
  $("d-move").addEventListener("submit", (ev) => {
    ev.preventDefault();
    act("/transition", { to: $("d-to").value, resolution: $("d-resolution").value || null, note: $("d-note").value || null });
  });
  $("d-note-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("d-note-text").value.trim();
    if (text) act("/notes", { text: text }).then(() => { $("d-note-text").value = ""; });
  });
  $("d-blacklist").addEventListener("click", () => {
    const reason = prompt(t.blacklist_reason);
    if (reason && reason.trim()) act("/blacklist", { reason: reason.trim() });
  });
  loadList();
  setInterval(loadList, 30000); // deadlines move even when nothing is posted
})();

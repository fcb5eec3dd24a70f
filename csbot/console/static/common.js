// csbot console: what every console page shares (boot data, the JSON API with CSRF, element helper).
// No framework, no build step, no CDN. Text from buyers is only ever set through textContent.
"use strict";
window.csbot = (function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);

  async function api(path, body, method) {
    const opts = { credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined || method) {
      opts.method = method || "POST";
      opts.headers["Content-Type"] = "application/json";
      opts.headers["X-CSRF-Token"] = boot.csrf; // the session's CSRF token, checked on every POST
      opts.body = JSON.stringify(body || {});
    }
    const resp = await fetch(path, opts);
    if (resp.status === 401) { location.href = "/console/login?next=" + encodeURIComponent(location.pathname); }
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const field = data && data.detail && data.detail.field ? " (" + data.detail.field + ")" : "";
      throw new Error(((data && data.error) || resp.status) + field);
    }
    return data;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  return { boot, t: boot.t, $: (id) => document.getElementById(id), api, el };
})();

// Staff: status of the read side and the processes, a stream browser with each stream's
// timeline, the live tail of the log, order actions, the catalogue, and `audit verify`.

import { staff, staffToken, setStaffToken } from "./api.js";
import { html, render, money, when, flash, problem, pill, formData } from "./ui.js";
import { every } from "./app.js";

const tabs = () => html`
  <nav class="tabs" aria-label="Staff">
    <a href="#/staff">Status</a><a href="#/staff/find">Find</a><a href="#/staff/log">Live log</a>
    <a href="#/staff/catalogue">Catalogue</a>
  </nav>`;

/** The sign-in form until an admin token is saved. Returns whether one is. */
function signedIn() {
  if (staffToken()) return true;
  render(html`
    <h1>Staff</h1>
    <p>Paste an admin token. Make one on the server with
      <code>ordo token --ttl 12h</code> (from a checkout: <code>cargo run --release -p ordo-api --bin ordo -- token</code>).</p>
    <form id="token" class="row">
      <input name="token" aria-label="Admin token" placeholder="eyJ…" required size="60">
      <button type="submit">Sign in</button>
    </form>`);
  document.getElementById("token").addEventListener("submit", async (e) => {
    e.preventDefault();
    setStaffToken(formData(e.target).token);
    try {
      await staff.projections();
      dispatchEvent(new HashChangeEvent("hashchange"));
    } catch (err) {
      setStaffToken(null);
      problem(err);
    }
  });
  return false;
}

/** Runs a staff screen, sending the person back to sign in when the token is refused. */
async function guarded(screen) {
  if (!signedIn()) return;
  try {
    await screen();
  } catch (e) {
    if (e.status === 401 || e.status === 403) {
      setStaffToken(null);
      flash("That token is not (or no longer) an admin token; sign in again.", "error");
      signedIn();
    } else problem(e);
  }
}

// ---- status ----

export const statusPage = () =>
  guarded(async () => {
    render(html`
      ${tabs()}
      <h1>Status</h1>
      <section><h2>Projections</h2><div id="projections"></div></section>
      <section><h2>Roles (processes, outbox, projection runners)</h2><div id="roles"></div></section>
      <section><h2>Audit</h2>
        <p>Checks the log's hash chain and that every event decodes with today's code.</p>
        <button id="audit">Run audit verify</button> <span id="audit-result" aria-live="polite"></span>
        <p><button id="sign-out" class="link">Sign out</button></p>
      </section>`);
    const show = async () => {
      const [p, r] = await Promise.all([staff.projections(), staff.roles()]);
      const target = document.getElementById("projections");
      if (!target) return "stop";
      target.innerHTML = html`<table>
        <thead><tr><th>Projection</th><th>Version</th><th>Position</th><th>Lag (events)</th><th>Lag (s)</th><th>Last error</th></tr></thead>
        <tbody>${p.projections.map((x) => html`<tr><td>${x.name}</td><td>v${x.active_version}${x.building_version ? ` (building v${x.building_version})` : ""}</td>
          <td>${x.position ?? "–"}</td><td>${x.lag_events ?? "–"}</td><td>${x.lag_seconds?.toFixed(3) ?? "–"}</td><td class="warn">${x.last_error || ""}</td></tr>`)}</tbody>
      </table>`.__raw;
      document.getElementById("roles").innerHTML = html`<p class="muted">Answered by instance ${r.instance}.</p><table>
        <thead><tr><th>Role</th><th>Holder</th><th>Live</th><th>Since</th><th>Epoch</th><th>Position</th><th>Lag</th></tr></thead>
        <tbody>${r.roles.map((x) => html`<tr><td>${x.role}</td><td>${x.holder || "–"}${x.held_here ? " (this one)" : ""}</td>
          <td>${x.live ? "yes" : "no"}</td><td>${when(x.since)}</td><td>${x.epoch ?? "–"}</td><td>${x.position ?? "–"}</td><td>${x.lag_events ?? "–"}</td></tr>`)}</tbody>
      </table>`.__raw;
    };
    await show();
    every(2000, show);
    document.getElementById("audit").addEventListener("click", async (e) => {
      const out = document.getElementById("audit-result");
      e.target.disabled = true;
      out.textContent = "verifying…";
      try {
        const a = await staff.audit();
        out.className = a.ok ? "ok" : "warn";
        out.textContent = a.summary;
      } catch (err) {
        out.textContent = "";
        problem(err);
      } finally {
        e.target.disabled = false;
      }
    });
    document.getElementById("sign-out").addEventListener("click", () => {
      setStaffToken(null);
      signedIn();
    });
  });

// ---- find ----

/** Where an id the person typed may live: a stream name as given, or an aggregate of each kind. */
function candidates(q) {
  if (/^(order|cart|product|payment)-/.test(q)) return [q];
  return [`order-${q}`, `cart-${q}`, `product-${q.toUpperCase()}`, `payment-${q}`];
}

export const findPage = (params) =>
  guarded(async () => {
    const q = (params.get("q") || "").trim();
    render(html`
      ${tabs()}
      <h1>Find</h1>
      <form id="find" class="row" role="search">
        <input name="q" value="${q}" aria-label="Order id, SKU, cart id, customer id or stream" placeholder="order id, SKU, cart id, customer id or stream" size="50" autofocus>
        <button type="submit">Find</button>
      </form>
      <div id="hits"></div>`);
    document.getElementById("find").addEventListener("submit", (e) => {
      e.preventDefault();
      location.hash = `#/staff/find?${new URLSearchParams(formData(e.target))}`;
    });
    if (!q) return;
    const streams = (
      await Promise.all(candidates(q).map((s) => staff.events(s).then((page) => [s, page.events[0]]).catch(() => null)))
    ).filter(Boolean);
    const orders = await staff.customerOrders(q).then((p) => p.orders).catch(() => []);
    const hits = document.getElementById("hits");
    if (streams.length === 0 && orders.length === 0) {
      hits.innerHTML = html`<p>Nothing found for <strong>${q}</strong>.</p>`.__raw;
      return;
    }
    hits.innerHTML = html`
      ${streams.length ? html`<h2>Streams</h2><ul>${streams.map(([s, first]) => html`
        <li><a href="#/staff/stream/${encodeURIComponent(s)}">${s}</a> <span class="muted">since ${when(first.recorded_at)}</span></li>`)}</ul>` : ""}
      ${orders.length ? html`<h2>Orders of customer ${q}</h2><table><tbody>${orders.map((o) => html`
        <tr><td><a href="#/staff/stream/order-${encodeURIComponent(o.order_id)}">${o.order_id}</a></td><td>${when(o.placed_at)}</td>
        <td>${money(o.total_minor, o.currency)}</td><td>${pill(o.status)}</td></tr>`)}</tbody></table>` : ""}`.__raw;
  });

// ---- a stream's timeline ----

/** A read-model value for people: epoch-millisecond `*_at` fields as times. */
function shown(field, value) {
  if (value === undefined || value === null || value === "") return "∅";
  if (field.endsWith("_at") && /^\d{12,}$/.test(value)) return when(new Date(Number(value)).toISOString());
  if (/^[[{]/.test(value)) {
    // Nested values (an address, order lines, holds) as readable text, not JSON.
    try {
      return readable(JSON.parse(value)) || "∅";
    } catch {
      return value;
    }
  }
  return value;
}

function readable(v) {
  if (Array.isArray(v)) return v.map(readable).join("; ");
  if (v && typeof v === "object") {
    return Object.entries(v)
      .filter(([, x]) => x !== "" && x !== null)
      .map(([k, x]) => `${k} ${readable(x)}`)
      .join(", ");
  }
  return String(v);
}

function actor(event) {
  const h = event.headers || {};
  return h.actor ? `${h.actor}${h.role ? ` (${h.role})` : ""}` : "–";
}

export const streamPage = (stream) =>
  guarded(async () => {
    const t = await staff.timeline(stream);
    const last = t.entries[t.entries.length - 1];
    const isOrder = stream.startsWith("order-");
    const orderId = stream.slice("order-".length);
    render(html`
      ${tabs()}
      <h1>${stream}</h1>
      ${isOrder ? html`<p>Payment: <a href="#/staff/stream/payment-${encodeURIComponent(orderId)}">payment-${orderId}</a></p>` : ""}
      ${isOrder ? orderActions(last && last.state) : ""}
      <div class="split">
        <table class="timeline">
          <thead><tr><th>v</th><th>When</th><th>Event</th><th>Who</th><th>What changed</th></tr></thead>
          <tbody>${t.entries.map((e, i) => html`
            <tr tabindex="0" data-i="${i}" class="${i === t.entries.length - 1 ? "selected" : ""}">
              <td>${e.event.version}</td><td>${when(e.event.recorded_at)}</td><td><strong>${e.event.type}</strong></td>
              <td>${actor(e.event)}</td>
              <td>${e.changed.map((c) => html`<div><code>${c.field}</code>: ${shown(c.field, c.before)} → ${shown(c.field, c.after)}</div>`)}</td>
            </tr>`)}</tbody>
        </table>
        <aside id="state" aria-live="polite"></aside>
      </div>
      ${t.truncated ? html`<p class="muted">Only the first 1,000 events are shown.</p>` : ""}`);
    const showState = (i) => {
      const e = t.entries[i];
      document.querySelectorAll("tr[data-i]").forEach((r) => r.classList.toggle("selected", Number(r.dataset.i) === i));
      document.getElementById("state").innerHTML = html`
        <h2>State as of v${e.event.version}</h2>
        ${e.state ? html`<dl>${Object.entries(e.state).map(([k, v]) => html`<dt>${k}</dt><dd>${shown(k, v)}</dd>`)}</dl>` : html`<p class="muted">No read model for this stream.</p>`}
        <details><summary>Event as stored</summary><pre>${JSON.stringify(e.event, null, 2)}</pre></details>`.__raw;
    };
    document.querySelectorAll("tr[data-i]").forEach((row) => {
      const pick = () => showState(Number(row.dataset.i));
      row.addEventListener("click", pick);
      row.addEventListener("keydown", (k) => (k.key === "Enter" || k.key === " ") && (k.preventDefault(), pick()));
    });
    showState(t.entries.length - 1);
    if (isOrder) wireOrderActions(orderId, stream);
  });

function orderActions(state) {
  const status = state && state.status;
  return html`
    <section class="actions" aria-label="Order actions">
      <span>Now ${pill(status || "unknown")}</span>
      <form data-act="ship" class="row"><input name="carrier" placeholder="Carrier" required size="10"><input name="tracking" placeholder="Tracking" required size="14"><button ${status === "confirmed" ? "" : "disabled"}>Ship</button></form>
      <form data-act="deliver"><button ${status === "shipped" ? "" : "disabled"}>Deliver</button></form>
      <form data-act="cancel" class="row"><input name="reason" placeholder="Reason" size="14"><button ${["placed", "confirmed"].includes(status) ? "" : "disabled"}>Cancel</button></form>
      <form data-act="refund" class="row"><input name="amount" type="number" min="0.01" step="0.01" placeholder="Amount" required size="8"><button ${["confirmed", "shipped", "delivered"].includes(status) ? "" : "disabled"}>Refund</button></form>
    </section>`;
}

function wireOrderActions(id, stream) {
  const acts = {
    ship: (f) => staff.ship(id, f.carrier, f.tracking),
    deliver: () => staff.deliver(id),
    cancel: (f) => staff.cancel(id, f.reason || "cancelled by staff"),
    refund: (f) => staff.refund(id, Math.round(Number(f.amount) * 100)),
  };
  document.querySelectorAll("form[data-act]").forEach((form) =>
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await acts[form.dataset.act](formData(form));
        flash(`Order ${id}: ${form.dataset.act} recorded.`, "ok");
        await streamPage(stream);
      } catch (err) {
        problem(err);
      }
    }),
  );
}

// ---- the live log ----

export const logPage = () =>
  guarded(async () => {
    render(html`
      ${tabs()}
      <h1>Live log</h1>
      <p><label class="check"><input type="checkbox" id="paused"> Pause</label></p>
      <table class="log"><thead><tr><th>Position</th><th>When</th><th>Stream</th><th>Event</th><th>Who</th></tr></thead><tbody id="tail"></tbody></table>`);
    let after = null;
    const tail = async () => {
      const body = document.getElementById("tail");
      if (!body) return "stop";
      if (document.getElementById("paused").checked) return;
      const page = await staff.log(after, 200);
      after = page.next_after ?? after;
      const rows = page.events.reverse().map((e) => html`
        <tr><td>${e.position}</td><td>${when(e.recorded_at)}</td>
        <td><a href="#/staff/stream/${encodeURIComponent(e.stream)}">${e.stream}</a></td><td>${e.type}</td><td>${actor(e)}</td></tr>`.__raw);
      body.insertAdjacentHTML("afterbegin", rows.join(""));
      while (body.rows.length > 300) body.deleteRow(-1);
    };
    await tail();
    every(1000, tail);
  });

// ---- the catalogue ----

export const cataloguePage = () =>
  guarded(async () => {
    render(html`
      ${tabs()}
      <h1>Catalogue</h1>
      <section><h2>List a product</h2>
        <form id="list" class="stack">
          <label>SKU <input name="sku" required pattern="[A-Z0-9][A-Z0-9-]{2,31}" placeholder="MUG-1"></label>
          <label>Name <input name="name" required></label>
          <label>Description <input name="description"></label>
          <label>Category <input name="category" required></label>
          <label>Brand <input name="brand" required></label>
          <label>Price <input name="price" type="number" min="0" step="0.01" required></label>
          <button type="submit">List product</button>
        </form>
      </section>
      <section><h2>Receive stock</h2>
        <form id="stock" class="row">
          <input name="sku" required placeholder="SKU" aria-label="SKU">
          <input name="quantity" type="number" min="1" required placeholder="Units" aria-label="Units">
          <button type="submit">Receive</button>
        </form>
      </section>`);
    document.getElementById("list").addEventListener("submit", async (e) => {
      e.preventDefault();
      const { price, ...p } = formData(e.target);
      try {
        await staff.listProduct({ ...p, price_minor: Math.round(Number(price) * 100) });
        flash(`Listed ${p.sku}. Receive stock to sell it.`, "ok");
        e.target.reset();
      } catch (err) {
        problem(err);
      }
    });
    document.getElementById("stock").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = formData(e.target);
      try {
        await staff.receiveStock(f.sku.trim().toUpperCase(), Number(f.quantity));
        flash(`Received ${f.quantity} × ${f.sku}.`, "ok");
        e.target.reset();
      } catch (err) {
        problem(err);
      }
    });
  });


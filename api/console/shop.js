// The storefront: search, a product, the cart and its holds, checkout, order history.

import { shop, newKey } from "./api.js";
import { html, render, money, when, relative, flash, problem, pill, formData, debounce } from "./ui.js";
import { every } from "./app.js";

const CART = "ordo.cart";
const ADDRESS = "ordo.address";
/** Statuses after which an order no longer moves on its own. */
const SETTLED = ["confirmed", "cancelled", "shipped", "delivered"];

/** The simulator's test cards (see the README): what each does is what it says. */
const CARDS = [
  ["tok_visa", "Visa ending 4242: approves"],
  ["tok_declined", "Card that is declined"],
  ["tok_slow", "Slow card: approves after 2 s"],
];

// ---- search ----

export async function searchPage(params) {
  const q = params.get("q") || "";
  render(html`
    <section class="search">
      <h1>Shop</h1>
      <form id="search" role="search" autocomplete="off">
        <input id="q" name="q" type="search" placeholder="Search products…" aria-label="Search products" value="${q}" autofocus>
        <details ${params.get("category") || params.get("brand") || params.get("in_stock") ? "open" : ""}>
          <summary>Filters</summary>
          <div class="filters">
            <label>Category <input name="category" list="categories" value="${params.get("category") || ""}"></label>
            <label>Brand <input name="brand" list="brands" value="${params.get("brand") || ""}"></label>
            <label>Min price <input name="min_price" type="number" min="0" step="0.01" value="${params.get("min_price") || ""}"></label>
            <label>Max price <input name="max_price" type="number" min="0" step="0.01" value="${params.get("max_price") || ""}"></label>
            <label class="check"><input name="in_stock" type="checkbox" value="true" ${params.get("in_stock") ? "checked" : ""}> In stock only</label>
            <label>Sort <select name="sort">
              ${["relevance", "price_asc", "price_desc"].map((s) => html`<option ${params.get("sort") === s ? "selected" : ""}>${s}</option>`)}
            </select></label>
          </div>
        </details>
        <datalist id="categories"></datalist><datalist id="brands"></datalist>
      </form>
      <p id="count" class="muted"></p>
      <ul id="results" class="grid"></ul>
    </section>`);
  const form = document.getElementById("search");
  const run = async () => {
    // A keystroke's search may fire after the shopper has moved on: it must not touch the URL.
    // A click on a result sets the new fragment at once but renders its screen only after a
    // request, so the form can still be on the page when the shopper has already left it.
    if (!form.isConnected || !onSearchScreen()) return;
    const wanted = formData(form);
    const query = { limit: 24 };
    for (const [k, v] of Object.entries(wanted)) {
      if (!v) continue;
      // The form takes prices in units; the API takes minor units.
      query[k] = k.endsWith("_price") ? Math.round(Number(v) * 100) : v;
    }
    if (query.sort === "relevance") delete query.sort;
    history.replaceState(null, "", `#/?${new URLSearchParams(wanted)}`);
    try {
      const page = await shop.search(query);
      if (form.isConnected) showResults(page);
    } catch (e) {
      problem(e);
    }
  };
  form.addEventListener("input", debounce(run, 150));
  form.addEventListener("submit", (e) => (e.preventDefault(), run()));
  await run();
}

/** Whether the URL still names the search screen (`#/`, `#/?q=…`). */
function onSearchScreen() {
  return (location.hash.slice(1) || "/").split("?")[0] === "/";
}

function showResults(page) {
  const count = page.total_is_exact ? `${page.total}` : `${page.total}+`;
  document.getElementById("count").textContent = page.total === 0 ? "Nothing matches." : `${count} ${page.total === 1 && page.total_is_exact ? "product" : "products"}`;
  document.getElementById("results").innerHTML = page.products
    .map((p) => html`
      <li class="card product">
        <a href="#/p/${encodeURIComponent(p.sku)}" data-sku="${p.sku}">
          <strong>${p.name}</strong>
          <span class="muted">${p.brand} · ${p.category}</span>
          <span class="price">${money(p.price.minor, p.price.currency)}</span>
          <span class="${p.available > 0 ? "ok" : "warn"}">${p.available > 0 ? `${p.available} available` : "Sold out"}</span>
        </a>
      </li>`.__raw)
    .join("");
  // Filter suggestions from what the shop holds.
  const fill = (id, values) =>
    (document.getElementById(id).innerHTML = [...new Set(values)].map((v) => html`<option value="${v}">`.__raw).join(""));
  fill("categories", page.products.map((p) => p.category));
  fill("brands", page.products.map((p) => p.brand));
}

// ---- a product ----

export async function productPage(sku) {
  const load = async () => {
    try {
      return await shop.product(sku);
    } catch (e) {
      if (e.status === 404) render(html`<h1>Not found</h1><p>No product ${sku} in the catalogue. <a href="#/">Back to the shop</a></p>`);
      else problem(e);
      return null;
    }
  };
  const p = await load();
  if (!p) return;
  render(html`
    <article class="product-page">
      <p><a href="#/">← Shop</a></p>
      <h1>${p.name}</h1>
      <p class="muted">${p.brand} · ${p.category} · SKU ${p.sku}</p>
      <p>${p.description}</p>
      <p class="price big">${money(p.price.minor, p.price.currency)}</p>
      <p id="availability" aria-live="polite"></p>
      <form id="add" class="row">
        <label>Quantity <input name="quantity" type="number" min="1" max="99" value="1" required></label>
        <button type="submit" id="add-to-cart">Add to cart</button>
      </form>
    </article>`);
  const show = (product) => {
    const el = document.getElementById("availability");
    if (!el) return;
    el.className = product.available > 0 ? "ok" : "warn";
    el.textContent = product.available > 0 ? `${product.available} available now` : "Sold out right now";
  };
  show(p);
  // Live availability: other shoppers' carts take and release stock.
  every(2000, async () => {
    const fresh = await shop.product(sku).catch(() => null);
    if (fresh) show(fresh);
  });
  document.getElementById("add").addEventListener("submit", async (e) => {
    e.preventDefault();
    const quantity = Number(formData(e.target).quantity);
    try {
      const cart = await currentCart();
      const line = (cart.lines || []).find((l) => l.sku === sku);
      await shop.setItem(cart.cart_id, sku, (line ? line.quantity : 0) + quantity);
      flash(`Added ${quantity} × ${p.name} to your cart.`, "ok");
      await refreshCartCount();
    } catch (err) {
      problem(err);
    }
  });
}

// ---- the cart ----

/** The shopper's open cart, opening a new one when there is none or it was checked out or expired. */
async function currentCart() {
  const id = localStorage.getItem(CART);
  if (id) {
    const cart = await shop.cart(id).catch(() => null);
    if (cart && cart.status === "open") return cart;
  }
  const receipt = await shop.openCart();
  localStorage.setItem(CART, receipt.id);
  return shop.cart(receipt.id);
}

export async function refreshCartCount() {
  const id = localStorage.getItem(CART);
  const badge = document.getElementById("cart-count");
  if (!id) return (badge.hidden = true);
  const cart = await shop.cart(id).catch(() => null);
  const n = cart && cart.status === "open" ? cart.lines.reduce((sum, l) => sum + l.quantity, 0) : 0;
  badge.hidden = n === 0;
  badge.textContent = String(n);
}

export async function cartPage() {
  const id = localStorage.getItem(CART);
  const cart = id ? await shop.cart(id).catch(() => null) : null;
  if (!cart || cart.status !== "open" || cart.lines.length === 0) {
    const why = cart && cart.status === "expired" ? "Your last cart expired and its items went back on the shelf. " : "";
    render(html`<h1>Your cart</h1><p>${why}Your cart is empty. <a href="#/">Find something</a>.</p>`);
    return;
  }
  const names = Object.fromEntries(
    await Promise.all(cart.lines.map(async (l) => [l.sku, (await shop.product(l.sku).catch(() => ({ name: l.sku }))).name])),
  );
  render(html`
    <h1>Your cart</h1>
    <table class="lines">
      <thead><tr><th>Product</th><th>Quantity</th><th>Price</th><th>Total</th><th></th></tr></thead>
      <tbody>${cart.lines.map((l) => html`
        <tr data-sku="${l.sku}">
          <td><a href="#/p/${encodeURIComponent(l.sku)}">${names[l.sku]}</a></td>
          <td><input class="qty" type="number" min="0" max="99" value="${l.quantity}" aria-label="Quantity of ${names[l.sku]}"></td>
          <td>${money(l.unit_price_minor, cart.currency)}</td>
          <td>${money(l.line_total_minor, cart.currency)}</td>
          <td><button class="link remove">Remove</button></td>
        </tr>`)}</tbody>
      <tfoot><tr><th colspan="3">Total</th><th>${money(cart.total_minor, cart.currency)}</th><th></th></tr></tfoot>
    </table>
    <p class="hold">These units are held for you until <strong>${when(cart.expires_at)}</strong>
      (<span id="lapse">${relative(cart.expires_at)}</span>); every change to the cart renews the hold.</p>
    <p><a class="button" id="to-checkout" href="#/checkout">Check out</a></p>`);
  every(1000, () => {
    const el = document.getElementById("lapse");
    if (el) el.textContent = relative(cart.expires_at);
  });
  const set = async (sku, quantity) => {
    try {
      await shop.setItem(cart.cart_id, sku, quantity);
      await refreshCartCount();
      await cartPage();
    } catch (err) {
      problem(err);
    }
  };
  for (const row of document.querySelectorAll("tr[data-sku]")) {
    row.querySelector(".qty").addEventListener("change", (e) => set(row.dataset.sku, Number(e.target.value)));
    row.querySelector(".remove").addEventListener("click", () => set(row.dataset.sku, 0));
  }
}

// ---- checkout ----

export async function checkoutPage() {
  const id = localStorage.getItem(CART);
  const cart = id ? await shop.cart(id).catch(() => null) : null;
  if (!cart || cart.status !== "open" || cart.lines.length === 0) {
    render(html`<h1>Checkout</h1><p>Nothing to check out. <a href="#/">Back to the shop</a>.</p>`);
    return;
  }
  const a = JSON.parse(localStorage.getItem(ADDRESS) || "{}");
  render(html`
    <h1>Checkout</h1>
    <p>Total <strong>${money(cart.total_minor, cart.currency)}</strong> for ${cart.lines.length} line(s).</p>
    <form id="checkout" class="stack">
      <fieldset><legend>Shipping address</legend>
        <label>Name <input name="name" required value="${a.name || ""}"></label>
        <label>Address <input name="line1" required value="${a.line1 || ""}"></label>
        <label>City <input name="city" required value="${a.city || ""}"></label>
        <label>Postal code <input name="postal_code" required value="${a.postal_code || ""}"></label>
        <label>Country (2 letters) <input name="country" required pattern="[A-Za-z]{2}" value="${a.country || ""}"></label>
      </fieldset>
      <fieldset><legend>Payment (test cards of the built-in simulator)</legend>
        ${CARDS.map(([token, label], i) => html`
          <label class="check"><input type="radio" name="payment_token" value="${token}" ${i === 0 ? "checked" : ""}> ${label}</label>`)}
      </fieldset>
      <button type="submit" id="place-order">Place order</button>
    </form>`);
  // One key per visit to this page: a double click or a retry places one order.
  const key = newKey();
  document.getElementById("checkout").addEventListener("submit", async (e) => {
    e.preventDefault();
    const { payment_token, ...address } = formData(e.target);
    address.country = address.country.toUpperCase();
    localStorage.setItem(ADDRESS, JSON.stringify(address));
    e.submitter.disabled = true;
    try {
      const receipt = await shop.checkout(cart.cart_id, { shipping_address: address, payment_token }, key);
      localStorage.removeItem(CART);
      await refreshCartCount();
      location.hash = `#/orders/${encodeURIComponent(receipt.id)}`;
    } catch (err) {
      e.submitter.disabled = false;
      problem(err);
    }
  });
}

// ---- orders ----

export async function ordersPage() {
  const show = async () => {
    const page = await shop.orders({ limit: 50 });
    render(html`
      <h1>Your orders</h1>
      ${page.orders.length === 0 ? html`<p>No orders yet. <a href="#/">Start shopping</a>.</p>` : html`
      <table class="orders">
        <thead><tr><th>Order</th><th>Placed</th><th>Total</th><th>Status</th></tr></thead>
        <tbody>${page.orders.map((o) => html`
          <tr><td><a href="#/orders/${encodeURIComponent(o.order_id)}">${o.order_id}</a></td><td>${when(o.placed_at)}</td>
          <td>${money(o.total_minor, o.currency)}</td><td>${pill(o.status)}</td></tr>`)}</tbody>
      </table>`}`);
    return page.orders.every((o) => SETTLED.includes(o.status));
  };
  try {
    // Placed orders move on their own (payment, then confirmed or cancelled): keep looking.
    if (!(await show())) every(1000, async () => (await show()) && "stop");
  } catch (e) {
    problem(e);
  }
}

export async function orderPage(id) {
  const show = async () => {
    const o = await shop.order(id);
    render(html`
      <p><a href="#/orders">← Your orders</a></p>
      <h1>Order ${o.order_id}</h1>
      <p>Status <span id="order-status">${pill(o.status)}</span> · payment ${pill(o.payment_status)}</p>
      ${o.cancel_reason ? html`<p class="warn">Cancelled: ${o.cancel_reason}</p>` : ""}
      <table class="lines">
        <thead><tr><th>Product</th><th>Quantity</th><th>Price</th><th>Total</th></tr></thead>
        <tbody>${o.lines.map((l) => html`<tr><td>${l.name}</td><td>${l.quantity}</td>
          <td>${money(l.unit_price_minor, o.currency)}</td><td>${money(l.line_total_minor, o.currency)}</td></tr>`)}</tbody>
        <tfoot><tr><th colspan="3">Total</th><th>${money(o.total_minor, o.currency)}</th></tr></tfoot>
      </table>
      <ul class="steps">
        <li>Placed ${when(o.placed_at)}</li>
        ${o.confirmed_at ? html`<li>Confirmed ${when(o.confirmed_at)}</li>` : ""}
        ${o.shipped_at ? html`<li>Shipped ${when(o.shipped_at)} with ${o.carrier} (${o.tracking})</li>` : ""}
        ${o.delivered_at ? html`<li>Delivered ${when(o.delivered_at)}</li>` : ""}
        ${o.cancelled_at ? html`<li>Cancelled ${when(o.cancelled_at)}</li>` : ""}
      </ul>
      ${["placed", "confirmed"].includes(o.status) ? html`<button id="cancel-order" class="secondary">Cancel this order</button>` : ""}`);
    const cancel = document.getElementById("cancel-order");
    if (cancel)
      cancel.addEventListener("click", async () => {
        try {
          await shop.cancel(id, "cancelled by the shopper");
          flash("Order cancelled; the stock went back.", "ok");
          await show();
        } catch (e) {
          problem(e);
        }
      });
    return SETTLED.includes(o.status);
  };
  try {
    if (!(await show())) every(1000, async () => (await show()) && "stop");
  } catch (e) {
    if (e.status === 404) render(html`<h1>Not found</h1><p>No order ${id} of yours.</p>`);
    else problem(e);
  }
}

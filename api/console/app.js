// The console's entry: routes in the URL fragment, one screen at a time, and the timers a
// screen starts stopped when the person leaves it.

import * as shop from "./shop.js";
import * as staff from "./staff.js";
import { session } from "./api.js";
import { html, render, problem, clearFlash } from "./ui.js";

let timers = [];

/**
 * Runs `f` every `ms` while the current screen is shown; `f` returning "stop" ends it. Errors
 * are shown once, not every tick.
 */
export function every(ms, f) {
  let failing = false;
  const id = setInterval(async () => {
    try {
      if ((await f()) === "stop") clearInterval(id);
      failing = false;
    } catch (e) {
      if (!failing) problem(e);
      failing = true;
    }
  }, ms);
  timers.push(id);
}

const routes = [
  [/^\/$/, (m, params) => shop.searchPage(params), "shop"],
  [/^\/p\/(.+)$/, (m) => shop.productPage(decodeURIComponent(m[1])), "shop"],
  [/^\/cart$/, () => shop.cartPage(), "cart"],
  [/^\/checkout$/, () => shop.checkoutPage(), "cart"],
  [/^\/orders$/, () => shop.ordersPage(), "orders"],
  [/^\/orders\/(.+)$/, (m) => shop.orderPage(decodeURIComponent(m[1])), "orders"],
  [/^\/staff$/, () => staff.statusPage(), "staff"],
  [/^\/staff\/find$/, (m, params) => staff.findPage(params), "staff"],
  [/^\/staff\/stream\/(.+)$/, (m) => staff.streamPage(decodeURIComponent(m[1])), "staff"],
  [/^\/staff\/log$/, () => staff.logPage(), "staff"],
  [/^\/staff\/catalogue$/, () => staff.cataloguePage(), "staff"],
];

async function route() {
  clearFlash();
  timers.forEach(clearInterval);
  timers = [];
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query || "");
  for (const [pattern, screen, nav] of routes) {
    const m = path.match(pattern);
    if (!m) continue;
    document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === nav));
    try {
      await screen(m, params);
    } catch (e) {
      problem(e);
    }
    document.getElementById("view").focus({ preventScroll: true });
    return;
  }
  render(html`<h1>Not found</h1><p>No screen at ${path}. <a href="#/">Go to the shop</a>.</p>`);
}

// Screens render after their first request, so two quick navigations could finish out of
// order and leave the first one's screen under the second one's URL. They run one after the
// other instead: the last one navigated to is the last one drawn.
let routing = Promise.resolve();
const navigate = () => (routing = routing.then(route));
addEventListener("hashchange", navigate);
// The guest session exists from the first visit, so the first add-to-cart is one request.
session()
  .catch(problem)
  .finally(() => {
    shop.refreshCartCount().catch(() => {});
    navigate();
  });

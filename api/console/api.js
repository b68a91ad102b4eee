// The console's only door to Ordo: the public JSON API, with the caller's token, an
// Idempotency-Key on every POST, and problem documents (RFC 9457) turned into readable errors.

const SESSION = "ordo.session";
const STAFF = "ordo.staffToken";
const POSITION = "ordo.position";

/** An API refusal or failure, carrying the problem document's words. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.title = problem.title || `HTTP ${status}`;
    this.type = problem.type || "about:blank";
    this.problem = problem;
  }
}

/** A random key: a retried POST (a double click, a flaky network) then changes nothing. */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** How long a request may take before the console gives up on it. */
const REQUEST_TIMEOUT_MS = 15_000;

async function call(method, path, { token, body, key } = {}) {
  const headers = { Accept: "application/json, application/problem+json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method === "POST") headers["Idempotency-Key"] = key || newKey();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      // Screens are drawn one after the other (app.js): a request that never answers must
      // not hold up the next screen for ever. The server's own waits are 2 s at most.
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (e) {
    if (e.name === "TimeoutError") {
      throw new ApiError(0, { title: "Ordo did not answer", detail: `No answer within ${REQUEST_TIMEOUT_MS / 1000} s; retry.` });
    }
    throw new ApiError(0, { title: "Ordo cannot be reached", detail: "Check that `ordo serve` is running, then retry." });
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) throw new ApiError(response.status, json || { title: `HTTP ${response.status}`, detail: text });
  if (json && typeof json.position === "number") notePosition(json.position);
  return json;
}

/** The highest log position this browser has written: queries wait for it (read your writes). */
export function position() {
  const p = Number(localStorage.getItem(POSITION));
  return Number.isFinite(p) && p > 0 ? p : null;
}

function notePosition(p) {
  if (p > (position() || 0)) localStorage.setItem(POSITION, String(p));
}

function withPosition(path) {
  const p = position();
  if (p === null) return path;
  return path + (path.includes("?") ? "&" : "?") + `min_position=${p}`;
}

// ---- the shopper ----

/** The guest session, created on first visit (a customer id and its token, 30 days). */
export async function session() {
  const saved = JSON.parse(localStorage.getItem(SESSION) || "null");
  if (saved && Date.parse(saved.expires_at) > Date.now() + 60_000) return saved;
  const created = await call("POST", "/v1/sessions");
  localStorage.setItem(SESSION, JSON.stringify(created));
  return created;
}

async function asShopper(method, path, options = {}) {
  const { token } = await session();
  try {
    return await call(method, path, { ...options, token });
  } catch (e) {
    // A token signed with another secret (a new data directory): start a new guest.
    if (e.status === 401) {
      localStorage.removeItem(SESSION);
      localStorage.removeItem("ordo.cart");
      const again = await session();
      return call(method, path, { ...options, token: again.token });
    }
    throw e;
  }
}

export const shop = {
  search: (params) => call("GET", withPosition(`/v1/products?${new URLSearchParams(params)}`)),
  product: (sku) => call("GET", withPosition(`/v1/products/${encodeURIComponent(sku)}`)),
  openCart: () => asShopper("POST", "/v1/carts"),
  cart: (id) => asShopper("GET", withPosition(`/v1/carts/${encodeURIComponent(id)}`)),
  setItem: (cart, sku, quantity) =>
    asShopper("PUT", `/v1/carts/${encodeURIComponent(cart)}/items/${encodeURIComponent(sku)}`, { body: { quantity } }),
  checkout: (cart, body, key) =>
    asShopper("POST", `/v1/carts/${encodeURIComponent(cart)}/checkout`, { body, key }),
  orders: (params = {}) => asShopper("GET", withPosition(`/v1/me/orders?${new URLSearchParams(params)}`)),
  order: (id) => asShopper("GET", withPosition(`/v1/orders/${encodeURIComponent(id)}`)),
  cancel: (id, reason) => asShopper("POST", `/v1/orders/${encodeURIComponent(id)}/cancel`, { body: { reason } }),
};

// ---- staff ----

export function staffToken() {
  return localStorage.getItem(STAFF);
}

export function setStaffToken(token) {
  if (token) localStorage.setItem(STAFF, token.trim());
  else localStorage.removeItem(STAFF);
}

function asStaff(method, path, options = {}) {
  const token = staffToken();
  if (!token) return Promise.reject(new ApiError(401, { title: "Staff token needed", detail: "Paste an admin token on the Staff page." }));
  return call(method, path, { ...options, token });
}

const seg = encodeURIComponent;

export const staff = {
  projections: () => asStaff("GET", "/v1/admin/projections"),
  roles: () => asStaff("GET", "/v1/admin/roles"),
  log: (after, limit = 50) =>
    asStaff("GET", `/v1/admin/events?${new URLSearchParams(after === null || after === undefined ? { limit } : { after, limit })}`),
  events: (stream, limit = 1) => asStaff("GET", `/v1/admin/streams/${seg(stream)}/events?limit=${limit}`),
  timeline: (stream) => asStaff("GET", `/v1/admin/streams/${seg(stream)}/timeline`),
  customerOrders: (customer) => asStaff("GET", withPosition(`/v1/customers/${seg(customer)}/orders?limit=50`)),
  audit: () => asStaff("POST", "/v1/admin/audit"),
  ship: (id, carrier, tracking) => asStaff("POST", `/v1/orders/${seg(id)}/ship`, { body: { carrier, tracking } }),
  deliver: (id) => asStaff("POST", `/v1/orders/${seg(id)}/deliver`),
  cancel: (id, reason) => asStaff("POST", `/v1/orders/${seg(id)}/cancel`, { body: { reason } }),
  refund: (id, amount_minor) => asStaff("POST", `/v1/orders/${seg(id)}/refund`, { body: { amount_minor } }),
  listProduct: (product) => asStaff("POST", "/v1/products", { body: product }),
  receiveStock: (sku, quantity) => asStaff("POST", `/v1/products/${seg(sku)}/stock`, { body: { quantity } }),
};

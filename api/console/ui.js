// Small helpers every screen shares: safe HTML, money, times, messages.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escapes text for HTML. */
export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/**
 * A tagged template that escapes every interpolated value, except arrays of strings it
 * produced itself (marked with `raw`).
 */
export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((v, i) => {
    out += v && v.__raw !== undefined ? v.__raw : Array.isArray(v) ? v.map((x) => (x && x.__raw !== undefined ? x.__raw : esc(x))).join("") : esc(v);
    out += strings[i + 1];
  });
  return { __raw: out };
}

/** Marks already-safe HTML. */
export function raw(text) {
  return { __raw: text };
}

/** Puts `content` (from `html`) into the main view. */
export function render(content) {
  document.getElementById("view").innerHTML = content.__raw;
}

/** Minor units to a price: 1999, "EUR" -> "€19.99". */
export function money(minor, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(minor / 100);
  } catch {
    return `${(minor / 100).toFixed(2)} ${currency}`;
  }
}

/** An RFC 3339 time for people, in their time zone. */
export function when(rfc3339) {
  if (!rfc3339) return "";
  const d = new Date(rfc3339);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** "in 4 min", "12 s ago". */
export function relative(rfc3339) {
  const seconds = Math.round((Date.parse(rfc3339) - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  const text = abs < 90 ? `${abs} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : `${Math.round(abs / 3600)} h`;
  return seconds >= 0 ? `in ${text}` : `${text} ago`;
}

let flashTimer;

/** A message at the top of the page; errors stay until the next one. */
export function flash(message, kind = "info") {
  const box = document.getElementById("flash");
  box.className = `flash ${kind}`;
  box.textContent = message;
  clearTimeout(flashTimer);
  if (kind !== "error") flashTimer = setTimeout(() => (box.textContent = "", box.className = ""), 4000);
}

/** Clears the message: each screen starts without the last one's (a stale "Added 1 × …" on
 * another product's page would read as news about that product). */
export function clearFlash() {
  const box = document.getElementById("flash");
  clearTimeout(flashTimer);
  box.textContent = "";
  box.className = "";
}

/** An API error as the person should read it: the problem's title and detail. */
export function problem(error) {
  if (error && error.title) {
    flash(error.detail && error.detail !== error.title ? `${error.title}: ${error.detail}` : error.title, "error");
  } else {
    flash(String(error), "error");
  }
}

/** A status as a coloured pill. */
export function pill(status) {
  return html`<span class="pill ${status}">${status}</span>`;
}

/** Reads a form's named fields into an object. */
export function formData(form) {
  return Object.fromEntries(new FormData(form).entries());
}

/** Runs `f` when `ms` passed without another call: type-ahead without a request per key. */
export function debounce(f, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => f(...args), ms);
  };
}

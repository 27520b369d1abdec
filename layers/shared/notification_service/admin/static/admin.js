/**
 * Notification Service admin page: one ES module, no dependencies, no build step.
 *
 * Views (hash routing): #/ (list, filters in the hash query), #/notifications/<id> (detail),
 * #/notifications/<id>/logs (detail with its log lines), #/send (send a test notification).
 * Every DOM node holding API data is built with createElement/textContent: never innerHTML.
 */

const API = location.pathname.replace(/\/admin\/?$/, "") + "/api/v1";
const KEY_STORAGE = "notification-admin-api-key";
const AUTO_STORAGE = "notification-admin-auto-refresh";
const LIST_HASH_STORAGE = "notification-admin-list-hash";

const STATUSES = [
  "scheduled", "pending", "processing", "retrying", "sent",
  "partially_sent", "delivered", "undelivered", "failed", "cancelled",
];
const TERMINAL = new Set(["sent", "partially_sent", "delivered", "undelivered", "failed", "cancelled"]);
const CANCELLABLE = new Set(["scheduled", "pending", "retrying"]);
const CHANNELS = ["email", "sms", "telegram"];
/** @type {Array<[string, string, number | null]>} value, label, milliseconds back from now */
const RANGES = [
  ["1h", "Last hour", 3600e3],
  ["24h", "Last 24 hours", 86400e3],
  ["7d", "Last 7 days", 7 * 86400e3],
  ["30d", "Last 30 days", 30 * 86400e3],
  ["all", "Any time", null],
];
const DEFAULT_RANGE = "24h";
const PAGE_SIZE = 50;
const LIST_INTERVAL_MS = 5000;
const DETAIL_INTERVAL_MS = 2000;
const SEARCH_DELAY_MS = 300;

const $ = (/** @type {string} */ selector) => /** @type {HTMLElement} */ (document.querySelector(selector));

/* ------------------------------------------------------------------ DOM helpers */

/**
 * Creates an element. Attributes: "on<event>" functions become listeners; value/checked/selected/
 * disabled are set as properties; true gives an empty attribute; null/undefined/false are skipped.
 * Children: nodes, strings and numbers (as text), arrays (flattened); null/false are skipped.
 * @param {string} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (["value", "checked", "selected", "disabled"].includes(name)) {
      /** @type {any} */ (node)[name] = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

/** @param {Node} parent @param {any[]} children */
function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces every child of `parent`. @param {Node} parent @param {...any} children */
function replace(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
}

const pad = (/** @type {number} */ n, width = 2) => String(n).padStart(width, "0");

/** Local "YYYY-MM-DD HH:MM:SS" (with ".mmm" when `ms`). @param {string} iso */
function formatDate(iso, ms = false) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return `${date} ${time}${ms ? "." + pad(d.getMilliseconds(), 3) : ""}`;
}

/** A <time> showing local time, the full ISO string in datetime and title. @param {string|null} iso */
function timeEl(iso, ms = false) {
  if (!iso) return "—";
  return el("time", { datetime: iso, title: iso }, formatDate(iso, ms));
}

/** @param {number|null|undefined} ms */
function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return "—";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** A pill with the status (or outcome) text; colour comes from the class. @param {string} value */
function badge(value, attrs = {}) {
  const kind = String(value).replace(/[^a-z_]/gi, "");
  return el("span", { class: `badge s-${kind}`, ...attrs }, String(value));
}

/** @param {{email?: string|null, phone?: string|null, telegram_chat_id?: string|null}|null} r */
function recipientText(r) {
  if (!r) return "";
  return [r.email, r.phone, r.telegram_chat_id].filter(Boolean).join(", ");
}

/** The error of the last attempt not sent, else status_reason, else "—". @param {any} n */
function lastError(n) {
  const attempts = Array.isArray(n.attempts) ? n.attempts : [];
  const failed = [...attempts].reverse().find((a) => a.outcome !== "sent");
  return (failed && failed.error) || n.status_reason || "—";
}

/** A table whose cells carry data-label (their column name) for the stacked phone layout.
 * @param {{caption: string, columns: string[], rows: HTMLElement[], empty: string, testid?: string, hideCaption?: boolean}} o */
function dataTable(o) {
  const body = el("tbody", null, o.rows.length ? o.rows
    : el("tr", { class: "empty-row" }, el("td", { colspan: o.columns.length, class: "empty" }, o.empty)));
  return el("div", { class: "table-wrap" },
    el("table", { class: "data", "data-testid": o.testid },
      el("caption", { class: o.hideCaption ? "visually-hidden" : null }, o.caption),
      el("thead", null, el("tr", null, o.columns.map((c) => el("th", { scope: "col" }, c)))),
      body));
}

/** @param {string} label @param {any} content @param {Record<string, any>} [attrs] */
const cell = (label, content, attrs = {}) => el("td", { "data-label": label, ...attrs }, content);

/* ------------------------------------------------------------------ storage */

/** @param {Storage} store @param {string} key */
function readStore(store, key) {
  try { return store.getItem(key); } catch { return null; }
}
/** @param {Storage} store @param {string} key @param {string|null} value */
function writeStore(store, key, value) {
  try {
    if (value === null) store.removeItem(key); else store.setItem(key, value);
  } catch { /* storage unavailable: keep going without it */ }
}
const getKey = () => readStore(sessionStorage, KEY_STORAGE);
/** Set by a 401, cleared by submitting the key form: polling waits meanwhile (no dialog on every tick). */
let keyNeeded = false;
const autoRefreshOn = () => readStore(localStorage, AUTO_STORAGE) !== "off";
const setAutoRefresh = (/** @type {boolean} */ on) => writeStore(localStorage, AUTO_STORAGE, on ? "on" : "off");

/* ------------------------------------------------------------------ API */

class ApiError extends Error {
  /** @param {number} status 0 when unreachable @param {{error: string, message: string, details: any[]}} body
   *  @param {Headers|null} headers */
  constructor(status, body, headers) {
    super(body.message);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

/**
 * Calls the API. Resolves with {status, data, headers} on 2xx; throws ApiError otherwise (status 0
 * when unreachable). A 401 also opens the key form and stops polling until a key is entered.
 * Never logs to the console.
 * @param {string} path below /api/v1
 * @param {{method?: string, body?: any, headers?: Record<string, string>}} [options]
 */
async function api(path, { method = "GET", body, headers = {} } = {}) {
  const sent = { Accept: "application/json", ...headers };
  const key = getKey();
  if (key) sent["X-API-Key"] = key;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(API + path, {
      method, headers: sent, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { error: "unreachable", message: "The API is unreachable. Check the connection; the last data stays shown.", details: [] }, null);
  }
  let data = null;
  try {
    const text = await res.text();
    data = text ? JSON.parse(text) : null;
  } catch { data = null; }
  if (res.ok) {
    if (key) keyNeeded = false; // a late 401 of an older request must not pause a working key
    return { status: res.status, data, headers: res.headers };
  }
  const errorBody = data && typeof data.message === "string"
    ? { error: String(data.error || ""), message: data.message, details: Array.isArray(data.details) ? data.details : [] }
    : { error: `http_${res.status}`, message: `The API answered ${res.status} ${res.statusText}`.trim() + ".", details: [] };
  if (res.status === 401) {
    keyNeeded = true;
    showKeyDialog(errorBody.message);
  }
  throw new ApiError(res.status, errorBody, res.headers);
}

/** Query string from an object, leaving out empty values. @param {Record<string, any>} params */
function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

/* ------------------------------------------------------------------ banner and key form */

/** Status and message of the error the banner shows ("" when hidden). */
let bannerShown = "";

/** Shows an error in the page-wide banner (role="alert"); the same error again leaves it as it is,
 * so that it is announced once. @param {ApiError|Error} err */
function showBanner(err, action = null) {
  const banner = $("#banner");
  const status = err instanceof ApiError ? err.status : 0;
  const shown = `${status} ${err.message}`;
  if (!banner.hidden && shown === bannerShown) return;
  bannerShown = shown;
  const title = status === 0 ? "Cannot reach the API." : status === 401 ? "An API key is needed."
    : status >= 500 ? `The API answered ${status}.` : `The request failed (${status}).`;
  replace(banner, el("strong", null, title), " ", el("span", null, err.message), action);
  banner.hidden = false;
}
function hideBanner() {
  const banner = $("#banner");
  bannerShown = "";
  if (banner && !banner.hidden) { banner.hidden = true; banner.replaceChildren(); }
}

/** Any API error not handled by a view goes to the banner; a 401 has the key form already. */
function report(/** @type {any} */ err) {
  if (!(err instanceof ApiError)) throw err;
  if (err.status !== 401) showBanner(err);
}

const keyDialog = () => /** @type {HTMLDialogElement} */ ($("#key-dialog"));

/** Opens the key form (once, however many calls answered 401). @param {string} [message] */
function showKeyDialog(message) {
  const dialog = keyDialog();
  $("#key-dialog-message").textContent = message
    ? `The API answered: ${message}`
    : "Enter an API key. It is kept in this tab only (session storage).";
  if (dialog.open) return;
  const input = /** @type {HTMLInputElement} */ ($("#api-key"));
  input.value = "";
  $("#api-key-error").hidden = true;
  input.removeAttribute("aria-invalid");
  dialog.showModal();
  input.focus();
}

function setupKeyForm() {
  const dialog = keyDialog();
  const input = /** @type {HTMLInputElement} */ ($("#api-key"));
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      const error = $("#api-key-error");
      error.textContent = "Enter a key.";
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    writeStore(sessionStorage, KEY_STORAGE, key);
    keyNeeded = false;
    dialog.close("saved");
    route();
  });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "saved") { dialog.returnValue = ""; return; }
    showBanner(new ApiError(401, { error: "unauthorized", message: "The key form was closed.", details: [] }, null),
      el("button", { type: "button", class: "button small", onclick: () => showKeyDialog() }, "Enter API key"));
  });
  $("#forget-key").addEventListener("click", () => {
    writeStore(sessionStorage, KEY_STORAGE, null);
    keyNeeded = true; // no polling without a key until one is entered
    showKeyDialog();
    $("#key-dialog-message").textContent = "Key forgotten. Enter an API key to continue.";
  });
}

/* ------------------------------------------------------------------ polling */

/**
 * Runs `fn` every `ms` while the tab is visible, the key form is closed and no 401 waits for a key;
 * runs never overlap.
 * Coming back to the tab runs it at once. Returns stop().
 * @param {() => Promise<void>} fn @param {number} ms
 */
function poll(fn, ms) {
  let timer = 0;
  let running = false;
  let stopped = false;
  const schedule = () => {
    clearTimeout(timer);
    if (!stopped && document.visibilityState === "visible") timer = window.setTimeout(tick, ms);
  };
  const tick = async () => {
    if (stopped || running) return;
    if (keyDialog().open || keyNeeded) { schedule(); return; }
    running = true;
    try { await fn(); } catch { /* the view reports its own errors */ } finally { running = false; schedule(); }
  };
  const onVisibility = () => (document.visibilityState === "visible" ? tick() : clearTimeout(timer));
  document.addEventListener("visibilitychange", onVisibility);
  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener("visibilitychange", onVisibility);
  };
}

/* ------------------------------------------------------------------ router */

let cleanupView = () => {};

/** @returns {{path: string, params: URLSearchParams}} */
function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const at = raw.indexOf("?");
  return at < 0 ? { path: raw, params: new URLSearchParams() }
    : { path: raw.slice(0, at), params: new URLSearchParams(raw.slice(at + 1)) };
}

function route() {
  cleanupView();
  cleanupView = () => {};
  hideBanner();
  const { path, params } = parseHash();
  const detail = path.match(/^\/notifications\/([^/]+)(\/logs)?\/?$/);
  let nav = "";
  if (path === "/" || path === "") {
    nav = "list";
    cleanupView = renderList(params);
  } else if (path === "/send") {
    nav = "send";
    cleanupView = renderSend();
  } else if (detail) {
    let id = detail[1];
    try { id = decodeURIComponent(id); } catch { /* keep it as written */ }
    cleanupView = renderDetail(id, Boolean(detail[2]));
  } else {
    showView("Page not found", el("p", null, "Nothing here. ", el("a", { href: "#/" }, "Go to the notifications")));
  }
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.getAttribute("data-nav") === nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/**
 * Puts a view in place and moves focus to its heading.
 * @param {string} title document title part
 * @param {...any} children; the first <h1> gets the focus
 */
function showView(title, ...children) {
  const view = $("#view");
  replace(view, ...children);
  document.title = `${title} — Notification Service Admin`;
  let heading = view.querySelector("h1");
  if (!heading) {
    heading = el("h1", null, title);
    view.prepend(heading);
  }
  heading.setAttribute("tabindex", "-1");
  heading.focus();
}

/* ------------------------------------------------------------------ list view */

/** @param {URLSearchParams} params */
function readFilters(params) {
  const status = params.get("status") || "";
  const channel = params.get("channel") || "";
  const range = params.get("range") || DEFAULT_RANGE;
  return {
    status: STATUSES.includes(status) ? status : "",
    channel: CHANNELS.includes(channel) ? channel : "",
    range: RANGES.some(([v]) => v === range) ? range : DEFAULT_RANGE,
    q: (params.get("q") || "").trim(),
  };
}

/** @param {ReturnType<typeof readFilters>} f */
function filtersHash(f) {
  const q = query({ status: f.status, channel: f.channel, range: f.range === DEFAULT_RANGE ? "" : f.range, q: f.q });
  return `#/${q}`;
}

/** created_after for a time range: now minus the range ("" for any time). @param {string} range */
function createdAfter(range) {
  const back = (RANGES.find(([v]) => v === range) || [])[2];
  return back ? new Date(Date.now() - back).toISOString() : "";
}

/**
 * The API query for the filters (counts leave the status out).
 * @param {ReturnType<typeof readFilters>} f @param {string} after created_after (see createdAfter)
 */
function apiFilters(f, after, withStatus = true) {
  return { status: withStatus ? f.status : "", channel: f.channel, created_after: after, q: f.q };
}

/** @param {any} n */
function listRow(n) {
  return el("tr", { "data-id": n.id },
    cell("Created", timeEl(n.created_at)),
    cell("Id", el("a", { href: `#/notifications/${encodeURIComponent(n.id)}`, class: "mono" }, n.id)),
    cell("Status", badge(n.status)),
    cell("Channels", (n.channels || []).join(", ") || "—"),
    cell("Recipient", recipientText(n.recipient) || "—"),
    cell("Last error", lastError(n), { class: "error-text" }),
    cell("Attempts", String((n.attempts || []).length), { class: "num" }));
}

/** @param {URLSearchParams} params @returns {() => void} cleanup */
function renderList(params) {
  const filters = readFilters(params);
  const listHash = filtersHash(filters);
  writeStore(sessionStorage, LIST_HASH_STORAGE, listHash);
  /** @type {any[]} */
  let items = [];
  let pages = 0;
  let cursor = null;
  /** created_after of the listing shown: "Load more" sends it with `cursor` (a cursor is only valid in its window). */
  let listAfter = "";
  let generation = 0;
  let loadingMore = false;
  let autoTicks = 0;
  let drawnRows = "";
  let drawnCounts = "";
  let loaded = false;
  let searchTimer = 0;
  let stopPolling = () => {};

  // Counts by status
  const countButtons = STATUSES.map((status) => el("button", {
    type: "button", class: `count s-${status}`, "data-status": status, "aria-label": `${status}: …`,
    "aria-pressed": "false", onclick: () => setFilter("status", filters.status === status ? "" : status),
  }, el("span", { class: "count-name" }, status), el("span", { class: "count-n" }, "…")));
  const total = el("span", { class: "count-n" }, "…");
  const cappedNote = el("p", { id: "counts-capped", class: "counts-capped muted", hidden: true },
    "Counts are lower bounds (the server stopped counting at its limit).");
  const countsNav = el("nav", { class: "counts", "aria-label": "Counts by status" },
    el("ul", null, countButtons.map((b) => el("li", null, b))),
    el("p", { class: "count-total", "data-testid": "count-total" }, "Total ", total),
    cappedNote);

  // Filters
  const select = (/** @type {string} */ id, /** @type {string} */ label, /** @type {Array<[string,string]>} */ options, /** @type {string} */ value) =>
    el("div", { class: "field" }, el("label", { for: id }, label),
      el("select", { id, name: id }, options.map(([v, text]) => el("option", { value: v, selected: v === value }, text))));
  const statusField = select("f-status", "Status", [["", "Any status"], ...STATUSES.map((s) => /** @type {[string,string]} */ ([s, s]))], filters.status);
  const channelField = select("f-channel", "Channel", [["", "Any channel"], ...CHANNELS.map((c) => /** @type {[string,string]} */ ([c, c]))], filters.channel);
  const rangeField = select("f-range", "Time range", RANGES.map(([v, t]) => /** @type {[string,string]} */ ([v, t])), filters.range);
  const search = /** @type {HTMLInputElement} */ (el("input", { id: "f-q", type: "search", name: "q", value: filters.q, autocomplete: "off", spellcheck: "false" }));
  const auto = /** @type {HTMLInputElement} */ (el("input", { id: "f-auto", type: "checkbox", checked: autoRefreshOn() }));
  const updated = el("p", { class: "updated muted" }, "Loading…");
  // Not the line above (it changes every 5 s): only a manual refresh is announced, here.
  const refreshed = el("p", { class: "visually-hidden", role: "status" });
  const form = el("form", { class: "filters card", role: "search", "aria-label": "Filters" },
    statusField, channelField, rangeField,
    el("div", { class: "field grow" }, el("label", { for: "f-q" }, "Search id or correlation id"), search),
    el("div", { class: "field-row" },
      el("div", { class: "check" }, auto, el("label", { for: "f-auto" }, "Auto-refresh")),
      el("button", { type: "submit", class: "button secondary" }, "Refresh"),
      updated, refreshed));

  const tableHolder = el("div", { class: "card table-card", "aria-busy": "true" },
    dataTable({ caption: "Notifications", hideCaption: true, columns: ["Created", "Id", "Status", "Channels", "Recipient", "Last error", "Attempts"], rows: [], empty: "Loading…" }));
  const more = /** @type {HTMLButtonElement} */ (el("button", { type: "button", class: "button secondary", hidden: true, onclick: () => loadMore() }, "Load more"));

  /** @param {"status"|"channel"|"range"|"q"} name @param {string} value @param {boolean} [manual] Refresh clicked */
  function setFilter(name, value, manual = true) {
    filters[name] = value;
    /** @type {HTMLSelectElement} */ (statusField.querySelector("select")).value = filters.status;
    const hash = filtersHash(filters);
    history.replaceState(null, "", hash);
    writeStore(sessionStorage, LIST_HASH_STORAGE, hash);
    reload(false, manual);
  }

  /** Redraws the rows, unless they are as last drawn (a redraw would lose text selection and focus). */
  function drawRows() {
    const drawn = JSON.stringify([items, cursor]);
    if (drawn === drawnRows) return;
    drawnRows = drawn;
    const focusedId = /** @type {HTMLElement|null} */ (document.activeElement)?.closest?.("tr[data-id]")?.getAttribute("data-id");
    const tbody = /** @type {HTMLElement} */ (tableHolder.querySelector("tbody"));
    // A search can end a page early: no match among the items the server read, but more to read.
    const empty = cursor ? "None found in the latest items read — Load more to search further."
      : "No notifications match these filters.";
    replace(tbody, items.length ? items.map(listRow)
      : el("tr", { class: "empty-row" }, el("td", { colspan: 7, class: "empty" }, empty)));
    if (focusedId) {
      const row = [...tbody.querySelectorAll("tr[data-id]")].find((r) => r.getAttribute("data-id") === focusedId);
      /** @type {HTMLElement|null} */ (row?.querySelector("a") || null)?.focus();
    }
    more.hidden = !cursor;
  }

  /**
   * Shows the counts (with "≥" when the server stopped counting at its limit: `capped`), unless
   * they are as last drawn. The aria-labels keep the plain number; the note says they are lower bounds.
   * @param {any} data
   */
  function drawCounts(data) {
    const drawn = JSON.stringify([data, filters.status]);
    if (drawn === drawnCounts) return;
    drawnCounts = drawn;
    const counts = (data && data.counts) || {};
    const capped = Boolean(data && data.capped);
    const shown = (/** @type {number} */ n) => (capped ? `≥${n}` : String(n));
    countButtons.forEach((button, i) => {
      const status = STATUSES[i];
      const n = Number(counts[status] || 0);
      button.setAttribute("aria-label", `${status}: ${n}`);
      button.setAttribute("aria-pressed", String(filters.status === status));
      if (capped) button.setAttribute("aria-describedby", cappedNote.id); else button.removeAttribute("aria-describedby");
      /** @type {HTMLElement} */ (button.querySelector(".count-n")).textContent = shown(n);
      button.classList.toggle("zero", n === 0);
    });
    total.textContent = shown(Number((data && data.total) || 0));
    cappedNote.hidden = !capped;
  }

  /**
   * Reloads the first page, and the counts (on every third auto-refresh only: they cost the server
   * more). `auto`: keep pages loaded with "Load more". `manual`: Refresh clicked, announce the update.
   */
  async function reload(auto = false, manual = false) {
    if (auto && loadingMore) return; // the next tick refreshes; a "Load more" answer is on its way
    const mine = auto ? generation : ++generation;
    if (!auto) tableHolder.setAttribute("aria-busy", "true");
    if (manual) refreshed.textContent = "";
    const withCounts = auto ? ++autoTicks % 3 === 0 : true;
    if (!auto) autoTicks = 0;
    // Pages loaded with "Load more" keep their time window; a new listing starts a new one.
    const after = auto && pages > 1 ? listAfter : createdAfter(filters.range);
    const [list, counts] = await Promise.allSettled([
      api(`/notifications${query({ ...apiFilters(filters, after), limit: PAGE_SIZE })}`),
      withCounts ? api(`/notifications/counts${query(apiFilters(filters, after, false))}`) : null,
    ]);
    if (mine !== generation) return;
    tableHolder.setAttribute("aria-busy", "false");
    if (counts.status === "rejected") countButtons.forEach((b, i) => b.setAttribute("aria-pressed", String(filters.status === STATUSES[i])));
    else if (counts.value) drawCounts(counts.value.data);
    if (list.status === "fulfilled") {
      const page = list.value.data || {};
      const fresh = Array.isArray(page.items) ? page.items : [];
      if (auto && pages > 1) {
        // The fresh first page, then the older rows loaded; the cursor stays for the next "Load more".
        // Rows newer than the fresh page's last one are in it, or no longer match the filters.
        const freshIds = new Set(fresh.map((n) => n.id));
        const last = fresh[fresh.length - 1];
        const older = (/** @type {any} */ n) => !last || Date.parse(n.created_at) < Date.parse(last.created_at);
        if (page.next_cursor) items = fresh.concat(items.filter((n) => !freshIds.has(n.id) && older(n)));
        else { items = fresh; cursor = null; }
      } else {
        items = fresh;
        pages = 1;
        cursor = page.next_cursor || null;
        listAfter = after;
      }
      loaded = true;
      drawRows();
    } else if (!loaded) {
      drawnRows = "";
      replace(/** @type {HTMLElement} */ (tableHolder.querySelector("tbody")),
        el("tr", { class: "empty-row" }, el("td", { colspan: 7, class: "empty" }, "Could not load the notifications.")));
    }
    const failure = [list, counts].find((r) => r.status === "rejected");
    if (failure) report(/** @type {PromiseRejectedResult} */ (failure).reason);
    else {
      hideBanner(); // only when everything loaded: a failing half keeps its banner, not re-announced
      updated.textContent = `Updated ${formatDate(new Date().toISOString()).slice(11)}`;
      if (manual) refreshed.textContent = updated.textContent;
    }
  }

  async function loadMore() {
    if (!cursor || loadingMore) return;
    loadingMore = true;
    const mine = generation;
    const from = cursor;
    const after = listAfter;
    more.disabled = true;
    more.setAttribute("aria-busy", "true");
    try {
      const { data } = await api(`/notifications${query({ ...apiFilters(filters, after), limit: PAGE_SIZE, cursor: from })}`);
      // Dropped when the listing changed meanwhile (an auto-refresh started a new one).
      if (mine !== generation || cursor !== from || listAfter !== after) return;
      const known = new Set(items.map((n) => n.id));
      const added = ((data && data.items) || []).filter((/** @type {any} */ n) => !known.has(n.id));
      items = items.concat(added);
      pages += 1;
      cursor = (data && data.next_cursor) || null;
      drawRows();
      if (!cursor && added.length) {
        const rows = /** @type {HTMLElement} */ (tableHolder.querySelector("tbody")).querySelectorAll("tr[data-id]");
        /** @type {HTMLElement|null} */ (rows[items.length - added.length]?.querySelector("a") || null)?.focus();
      }
    } catch (err) {
      if (mine !== generation) return;
      // The cursor does not fit the listing any more (e.g. its time window): start again from the top.
      if (err instanceof ApiError && err.status === 400 && err.body.error === "invalid_cursor") reload(false);
      else report(err);
    } finally {
      loadingMore = false;
      more.disabled = false;
      more.removeAttribute("aria-busy");
    }
  }

  function startPolling() {
    stopPolling();
    stopPolling = auto.checked ? poll(() => reload(true), LIST_INTERVAL_MS) : () => {};
  }

  for (const [field, name] of /** @type {Array<[HTMLElement, "status"|"channel"|"range"]>} */ ([[statusField, "status"], [channelField, "channel"], [rangeField, "range"]])) {
    const control = /** @type {HTMLSelectElement} */ (field.querySelector("select"));
    control.addEventListener("change", () => setFilter(name, control.value));
  }
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = window.setTimeout(() => {
      if (search.value.trim() !== filters.q) setFilter("q", search.value.trim());
    }, SEARCH_DELAY_MS);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    if (search.value.trim() !== filters.q) setFilter("q", search.value.trim(), true);
    else reload(false, true);
  });
  auto.addEventListener("change", () => {
    setAutoRefresh(auto.checked);
    startPolling();
  });

  showView("Notifications",
    el("div", { class: "view-head" }, el("h1", null, "Notifications")),
    countsNav, form, tableHolder, el("div", { class: "more" }, more));
  reload(false);
  startPolling();
  return () => {
    generation++;
    clearTimeout(searchTimer);
    stopPolling();
  };
}

/* ------------------------------------------------------------------ detail view */

/** A <dl> row, or null when the value is empty. @param {string} term @param {any} value */
function dlRow(term, value, ddAttrs = {}) {
  if (value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length)) return null;
  return el("div", { class: "dl-row" }, el("dt", null, term), el("dd", ddAttrs, value));
}

/** @param {any} n */
function detailsList(n) {
  const r = n.recipient || {};
  const recipient = [["email", r.email], ["phone", r.phone], ["telegram chat id", r.telegram_chat_id]]
    .filter(([, v]) => v)
    .map(([k, v]) => el("div", null, el("span", { class: "muted" }, `${k}: `), el("span", { class: "mono" }, v)));
  const template = n.template ? (n.template_version != null ? `${n.template} (version ${n.template_version})` : n.template) : null;
  return el("dl", { class: "details" },
    dlRow("Id", el("code", null, n.id)),
    dlRow("Correlation id", n.correlation_id ? el("code", null, n.correlation_id) : null, { "data-testid": "correlation-id" }),
    dlRow("Status reason", n.status_reason),
    dlRow("Channels", (n.channels || []).join(n.routing === "all" ? ", " : " → ")),
    dlRow("Routing", n.routing),
    dlRow("Channel used", n.channel_used),
    dlRow("Provider message id", n.provider_message_id ? el("code", null, n.provider_message_id) : null),
    dlRow("Recipient", recipient),
    dlRow("Created", n.created_at ? timeEl(n.created_at) : null),
    dlRow("Updated", n.updated_at ? timeEl(n.updated_at) : null),
    dlRow("Send at", n.send_at ? timeEl(n.send_at) : null),
    dlRow("Next attempt at", n.next_attempt_at ? timeEl(n.next_attempt_at) : null),
    dlRow("Rounds", n.rounds === null || n.rounds === undefined ? null : String(n.rounds)),
    dlRow("Template", template),
    dlRow("Callback URL", n.callback_url ? el("code", null, n.callback_url) : null),
    dlRow("Metadata", n.metadata ? el("pre", { class: "json" }, JSON.stringify(n.metadata, null, 2)) : null));
}

/** @param {any[]} attempts */
function attemptsTable(attempts) {
  let round = null;
  const rows = attempts.map((a) => {
    const startsRound = round !== null && a.round !== round;
    round = a.round;
    const error = a.error ? [a.error, a.failure_kind ? el("span", { class: "tag" }, a.failure_kind) : null,
      a.retry_after_seconds ? el("span", { class: "muted" }, ` retry after ${a.retry_after_seconds} s`) : null] : "—";
    return el("tr", { class: startsRound ? "round-start" : null, "data-round": a.round },
      cell("Round", String(a.round), { class: "num" }),
      cell("Channel", a.channel),
      cell("Outcome", badge(a.outcome)),
      cell("Error", error, { class: "error-text" }),
      cell("Duration", formatDuration(a.duration_ms), { class: "num" }),
      cell("Started", timeEl(a.started_at)));
  });
  return dataTable({ caption: "Attempts", testid: "attempts", hideCaption: true, columns: ["Round", "Channel", "Outcome", "Error", "Duration", "Started"], rows, empty: "No attempts yet." });
}

/** @param {any} n @param {Set<string>} openHtml channels whose HTML source was open */
function messageSection(n, openHtml) {
  const contents = n.contents;
  if (!contents || typeof contents !== "object") {
    return [
      n.subject ? el("p", null, el("span", { class: "muted" }, "Subject: "), n.subject) : null,
      n.message ? el("pre", { class: "message" }, n.message) : null,
      el("p", { class: "muted" }, "Sent as written on every channel (no template)."),
    ];
  }
  const order = [...(n.channels || []).filter((c) => c in contents), ...Object.keys(contents).filter((c) => !(n.channels || []).includes(c))];
  return order.map((channel) => {
    const c = contents[channel] || {};
    return el("article", { class: "message-part", "data-channel": channel },
      el("h3", null, channel),
      c.subject ? el("p", null, el("span", { class: "muted" }, "Subject: "), c.subject) : null,
      el("pre", { class: "message" }, c.text || ""),
      c.html ? el("details", { "data-channel": channel, open: openHtml.has(channel) },
        el("summary", null, "HTML"), el("pre", { class: "message html-source" }, c.html)) : null);
  });
}

/** @param {any[]} hooks */
function webhooksTable(hooks) {
  const rows = hooks.map((w) => el("tr", null,
    cell("Event id", el("code", null, w.event_id)),
    cell("Status", w.status),
    cell("Attempt", String(w.attempt), { class: "num" }),
    cell("At", timeEl(w.at)),
    cell("Delivered", el("span", { class: `badge ${w.delivered ? "s-sent" : "s-failed"}` }, w.delivered ? "yes" : "no")),
    cell("Status code", w.status_code ?? "—", { class: "num" }),
    cell("Error", w.error || "—", { class: "error-text" }),
    cell("Duration", formatDuration(w.duration_ms), { class: "num" })));
  return dataTable({ caption: "Webhooks", testid: "webhooks", hideCaption: true, columns: ["Event id", "Status", "Attempt", "At", "Delivered", "Status code", "Error", "Duration"], rows, empty: "" });
}

/** @param {Record<string, any>|null} fields */
function fieldsText(fields) {
  if (!fields || typeof fields !== "object") return "";
  return Object.entries(fields).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
}

/** @param {any} data */
function logsContent(data) {
  const events = Array.isArray(data && data.events) ? data.events : [];
  const rows = events.map((/** @type {any} */ e) => el("tr", { class: `level-${String(e.level || "").toLowerCase().replace(/[^a-z]/g, "")}` },
    cell("Time", timeEl(e.timestamp, true)),
    cell("Function", e.function),
    cell("Level", el("span", { class: "level" }, e.level)),
    cell("Message", e.message),
    cell("Details", el("code", { class: "fields" }, fieldsText(e.fields)))));
  return [
    data && data.command ? el("p", { class: "command" }, el("span", { class: "muted" }, "Same query on the command line: "), el("code", null, data.command)) : null,
    dataTable({ caption: "Log lines", testid: "log-lines", hideCaption: true, columns: ["Time", "Function", "Level", "Message", "Details"], rows, empty: "No log lines yet." }),
  ];
}

/** A card section with a heading. @param {string} id @param {string} title @param {...any} children */
function section(id, title, ...children) {
  return el("section", { class: "card section", "aria-labelledby": id }, el("h2", { id }, title), ...children);
}

/** @param {string} id @param {boolean} showLogs @returns {() => void} cleanup */
function renderDetail(id, showLogs) {
  const path = `/notifications/${encodeURIComponent(id)}`;
  const backHash = readStore(sessionStorage, LIST_HASH_STORAGE) || "#/";
  let alive = true;
  let busy = false;
  let acting = false; // from the action's request to the end of the reload after it
  /** @type {any} */
  let current = null;
  let drawn = "";
  let requests = 0;
  let retryLoad = false; // the first load failed (not a 404): polling tries again
  let logRequests = 0; // numbered like `requests`: an older answer never replaces a newer one
  let logsLoading = false;
  let stopPolling = () => {};
  let polling = false;

  const statusLine = el("p", { class: "status-line" }, el("span", { class: "muted" }, "Loading…"));
  const retry = /** @type {HTMLButtonElement} */ (el("button", { type: "button", class: "button primary", disabled: true, onclick: () => act("retry") }, "Retry"));
  const cancel = /** @type {HTMLButtonElement} */ (el("button", { type: "button", class: "button danger", disabled: true, onclick: () => askCancel() }, "Cancel"));
  const logsButton = el("button", { type: "button", class: "button secondary", onclick: () => loadLogs() }, "Show log lines");
  const keep = el("button", { type: "button", class: "button secondary small", onclick: () => closeConfirm(true) }, "Keep it");
  const confirm = el("div", { class: "confirm", hidden: true },
    el("p", { id: "confirm-text" }, "Cancel this notification?"),
    el("button", { type: "button", class: "button danger small", "aria-describedby": "confirm-text", onclick: () => { closeConfirm(false); act("cancel"); } }, "Yes, cancel it"),
    keep);
  const result = el("div", { class: "action-result", role: "status", "data-testid": "action-result" });
  const statusNews = el("p", { class: "visually-hidden", role: "status" });
  const auto = /** @type {HTMLInputElement} */ (el("input", { id: "d-auto", type: "checkbox", checked: autoRefreshOn() }));
  const body = el("div", { class: "detail-body" }, el("p", { class: "loading" }, "Loading notification…"));
  const logs = el("div", { class: "logs-holder" });
  const actions = el("div", { class: "actions card" },
    el("div", { class: "action-buttons" }, retry, cancel, confirm, logsButton,
      el("div", { class: "check" }, auto, el("label", { for: "d-auto" }, "Auto-refresh"))),
    el("p", { class: "hint muted" }, "Retry is for failed notifications; cancel for scheduled, pending or retrying ones."),
    result, statusNews);

  /** @param {any} message @param {"ok"|"info"|"error"} [kind] */
  function say(message, kind = "ok") {
    replace(result, el("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : null }, message));
  }

  function draw() {
    const n = current;
    replace(statusLine, badge(n.status, { "data-testid": "status" }),
      n.status_reason ? el("span", { class: "status-reason" }, n.status_reason) : null);
    retry.disabled = busy || n.status !== "failed";
    retry.title = n.status === "failed" ? "" : `Only a failed notification can be retried (this one is ${n.status}).`;
    cancel.disabled = busy || !CANCELLABLE.has(n.status);
    cancel.title = CANCELLABLE.has(n.status) ? "" : `Only a scheduled, pending or retrying notification can be cancelled (this one is ${n.status}).`;
    if (!retry.title) retry.removeAttribute("title");
    if (!cancel.title) cancel.removeAttribute("title");
    if (cancel.disabled && !confirm.hidden) closeConfirm(false);
    const openHtml = new Set([...body.querySelectorAll("details[open][data-channel]")].map((d) => d.getAttribute("data-channel") || ""));
    const hooks = Array.isArray(n.webhooks) ? n.webhooks : [];
    replace(body,
      section("sec-details", "Details", detailsList(n)),
      section("sec-attempts", "Attempts", attemptsTable(Array.isArray(n.attempts) ? n.attempts : [])),
      section("sec-message", "Message", messageSection(n, openHtml)),
      hooks.length ? section("sec-webhooks", "Webhooks", webhooksTable(hooks)) : null);
  }

  /** Keeps a 2 s refresh going while the status can still change and auto-refresh is on. */
  function keepPolling() {
    const changing = current ? !TERMINAL.has(current.status) : retryLoad;
    const wanted = alive && changing && auto.checked;
    if (wanted && !polling) { polling = true; stopPolling = poll(() => load(true), DETAIL_INTERVAL_MS); }
    if (!wanted && polling) { polling = false; stopPolling(); }
  }

  /**
   * Loads the notification and redraws it if it changed; an answer overtaken by a later load is
   * dropped. `polled`: skipped during an action (its own reload follows); a status change is announced.
   */
  async function load(polled = false) {
    if (polled && acting) return;
    const mine = ++requests;
    try {
      const { data } = await api(path);
      if (!alive || mine !== requests) return;
      hideBanner();
      retryLoad = false;
      const json = JSON.stringify(data);
      if (json !== drawn) {
        const before = current && current.status;
        current = data;
        drawn = json;
        draw();
        if (polled && before && before !== data.status) statusNews.textContent = `Status is now ${data.status}.`;
        if (before && logs.querySelector("section")) loadLogs(true); // shown: keep them current
      }
    } catch (err) {
      if (!alive || mine !== requests) return;
      if (err instanceof ApiError && err.status === 404) {
        current = null;
        drawn = "";
        actions.hidden = true;
        replace(statusLine);
        replace(body, el("div", { class: "notice error", role: "alert" }, el("strong", null, "Not found. "), err.message));
      } else {
        report(err);
        retryLoad = !current; // unreachable or a 5xx before the first answer: keep trying
        if (!current) replace(body, el("p", { class: "muted" }, "Could not load this notification."));
      }
    }
    keepPolling();
  }

  function askCancel() {
    cancel.hidden = true;
    confirm.hidden = false;
    keep.focus();
  }
  /** @param {boolean} refocus */
  function closeConfirm(refocus) {
    confirm.hidden = true;
    cancel.hidden = false;
    if (refocus) cancel.focus();
  }

  /** @param {"retry"|"cancel"} action */
  async function act(action) {
    acting = true;
    busy = true;
    retry.disabled = true;
    cancel.disabled = true;
    say(action === "retry" ? "Asking for a retry…" : "Cancelling…", "info");
    /** @type {string|null} message of a 503 on retry */
    let unavailable = null;
    try {
      const { data } = await api(`${path}/${action}`, { method: "POST" });
      if (!alive) return;
      say(action === "retry" ? `Retry queued: status is now ${data && data.status}.` : "Cancelled.");
    } catch (err) {
      if (!alive) return;
      if (!(err instanceof ApiError)) throw err;
      if (err.status === 503 && action === "retry") unavailable = err.message;
      else if (err.status !== 401) say(err.message, "error");
    } finally {
      busy = false;
    }
    drawn = ""; // redraw even if unchanged: the buttons were disabled while busy
    await load();
    acting = false;
    // A 503 on retry: accepted when the record is now "retrying" (the sweeper queues it later);
    // otherwise nothing changed.
    if (unavailable !== null && alive) {
      if (current && current.status === "retrying") say(`Retry accepted; it will be queued by the sweeper: ${unavailable}`, "info");
      else say(unavailable, "error");
    }
  }

  /** Shows (or refreshes) the log lines; `quiet`: a refresh after a change, focus stays put. */
  async function loadLogs(quiet = false) {
    if (quiet && logsLoading) return; // the one running answers soon enough
    const mine = ++logRequests;
    logsLoading = true;
    let holder = logs.querySelector("section");
    if (!holder) {
      holder = section("sec-logs", "Log lines");
      logs.append(holder);
    }
    const heading = /** @type {HTMLElement} */ (holder.querySelector("h2"));
    if (!quiet) {
      replace(holder, heading, el("p", { class: "loading", role: "status" }, "Loading log lines…"));
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
    try {
      const { data } = await api(`${path}/logs`);
      if (alive && mine === logRequests) replace(holder, heading, logsContent(data));
    } catch (err) {
      if (!alive || mine !== logRequests || !(err instanceof ApiError)) return;
      replace(holder, heading, el("p", { class: "notice error", role: "alert" }, err.message));
    } finally {
      if (mine === logRequests) logsLoading = false;
    }
  }

  auto.addEventListener("change", () => {
    setAutoRefresh(auto.checked);
    keepPolling();
  });

  showView(`Notification ${id}`,
    el("p", { class: "back" }, el("a", { href: backHash }, "← Notifications")),
    el("div", { class: "view-head" }, el("h1", null, "Notification ", el("code", { class: "id" }, id)), statusLine),
    actions, body, logs);
  load();
  if (showLogs) loadLogs();
  return () => {
    alive = false;
    stopPolling();
  };
}

/* ------------------------------------------------------------------ send view */

/** Form control ids per error field (the API names fields like "recipient.email", "channels.0"). */
const FIELD_TARGETS = {
  "recipient.email": ["s-email"],
  "recipient.phone": ["s-phone"],
  "recipient.telegram_chat_id": ["s-telegram"],
  recipient: ["s-email", "s-phone", "s-telegram"],
  channels: CHANNELS.map((c) => `s-ch-${c}`),
  routing: ["s-routing"],
  message: ["s-message"],
  subject: ["s-subject"],
  send_at: ["s-send-at"],
  "header.idempotency-key": ["s-idem"],
};
/** Where each group's error is written. */
const ERROR_SLOT = {
  "recipient.email": "err-email", "recipient.phone": "err-phone", "recipient.telegram_chat_id": "err-telegram",
  recipient: "err-recipient", channels: "err-channels", routing: "err-routing", message: "err-message",
  subject: "err-subject", send_at: "err-send-at", "header.idempotency-key": "err-idem",
};

/** Maps an API field name to a known group, or null. @param {string} field */
function fieldGroup(field) {
  let name = String(field || "").toLowerCase().replace(/^body\./, "");
  while (name) {
    if (name in FIELD_TARGETS) return name;
    name = name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : "";
  }
  return null;
}

/** @param {string} id @param {string} label @param {Record<string, any>} attrs @param {any} [hint] */
function textField(id, label, attrs, hint = null) {
  const errId = `err-${id.slice(2)}`;
  const hintId = hint ? `hint-${id.slice(2)}` : null;
  const tag = attrs.tag || "input";
  delete attrs.tag;
  return el("div", { class: "field" },
    el("label", { for: id }, label),
    hint ? el("p", { class: "hint muted", id: hintId }, hint) : null,
    el(tag, { id, name: id.slice(2), "aria-describedby": hintId, ...attrs }),
    el("p", { class: "field-error", id: errId, hidden: true }));
}

/** @returns {() => void} cleanup */
function renderSend() {
  let alive = true;
  const result = el("div", { class: "send-result", role: "status", "data-testid": "send-result" });
  const submit = el("button", { type: "submit", class: "button primary" }, "Send");
  const form = /** @type {HTMLFormElement} */ (el("form", { class: "send-form card", novalidate: true },
    el("fieldset", { class: "group" },
      el("legend", null, "Recipient"),
      el("p", { class: "hint muted", id: "hint-recipient" }, "At least one address; a channel without one is skipped."),
      el("div", { class: "grid-3" },
        textField("s-email", "Email", { type: "email", autocomplete: "off", spellcheck: "false" }),
        textField("s-phone", "Phone", { type: "tel", placeholder: "+447911123456", autocomplete: "off" }),
        textField("s-telegram", "Telegram chat id", { type: "text", inputmode: "numeric", autocomplete: "off" })),
      el("p", { class: "field-error", id: "err-recipient", hidden: true })),
    el("div", { class: "grid-2" },
      el("fieldset", { class: "group" },
        el("legend", null, "Channels"),
        el("p", { class: "hint muted" }, "Tried in this order when routing is fallback."),
        el("div", { class: "checks" }, CHANNELS.map((c) => el("div", { class: "check" },
          el("input", { type: "checkbox", id: `s-ch-${c}`, name: "channels", value: c, checked: true }),
          el("label", { for: `s-ch-${c}` }, c)))),
        el("p", { class: "field-error", id: "err-channels", hidden: true })),
      el("div", { class: "field" },
        el("label", { for: "s-routing" }, "Routing"),
        el("select", { id: "s-routing", name: "routing", "aria-describedby": "hint-routing" },
          el("option", { value: "fallback", selected: true }, "fallback"),
          el("option", { value: "all" }, "all")),
        el("p", { class: "hint muted", id: "hint-routing" }, "fallback: the first success ends it; all: every channel."),
        el("p", { class: "field-error", id: "err-routing", hidden: true }))),
    textField("s-subject", "Subject", { type: "text", autocomplete: "off" }),
    textField("s-message", "Message", { tag: "textarea", rows: 5, required: true }),
    el("div", { class: "grid-2" },
      textField("s-send-at", "Send at (optional)", { type: "datetime-local" }, "Your local time; empty sends now."),
      textField("s-idem", "Idempotency key (optional)", { type: "text", autocomplete: "off", spellcheck: "false" }, "Sent as the Idempotency-Key header.")),
    el("div", { class: "form-actions" }, submit),
    result));

  const value = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (form.querySelector(`#${id}`)).value.trim();

  function clearErrors() {
    for (const node of form.querySelectorAll("[aria-invalid]")) {
      node.removeAttribute("aria-invalid");
      const ids = (node.getAttribute("aria-describedby") || "").split(/\s+/).filter((x) => x && !x.startsWith("err-"));
      if (ids.length) node.setAttribute("aria-describedby", ids.join(" ")); else node.removeAttribute("aria-describedby");
    }
    for (const slot of form.querySelectorAll(".field-error")) { slot.textContent = ""; /** @type {HTMLElement} */ (slot).hidden = true; }
  }

  /** Marks fields named by the error details; returns the first invalid control. @param {any[]} details */
  function showFieldErrors(details) {
    /** @type {Map<string, string[]>} */
    const byGroup = new Map();
    for (const d of details) {
      const group = fieldGroup(d && d.field);
      if (group) byGroup.set(group, [...(byGroup.get(group) || []), String(d.reason || "invalid")]);
    }
    /** @type {HTMLElement|null} */
    let first = null;
    for (const [group, reasons] of byGroup) {
      const slot = /** @type {HTMLElement} */ (form.querySelector(`#${ERROR_SLOT[group]}`));
      slot.textContent = reasons.join("; ");
      slot.hidden = false;
      for (const id of FIELD_TARGETS[group]) {
        const control = /** @type {HTMLElement} */ (form.querySelector(`#${id}`));
        control.setAttribute("aria-invalid", "true");
        const ids = new Set((control.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean));
        ids.add(slot.id);
        control.setAttribute("aria-describedby", [...ids].join(" "));
        first = first || control;
      }
    }
    return first;
  }

  function buildBody() {
    /** @type {Record<string, any>} */
    const recipient = {};
    if (value("s-email")) recipient.email = value("s-email");
    if (value("s-phone")) recipient.phone = value("s-phone");
    if (value("s-telegram")) recipient.telegram_chat_id = value("s-telegram");
    /** @type {Record<string, any>} */
    const body = {
      recipient,
      channels: CHANNELS.filter((c) => /** @type {HTMLInputElement} */ (form.querySelector(`#s-ch-${c}`)).checked),
      routing: value("s-routing") || "fallback",
    };
    const message = /** @type {HTMLTextAreaElement} */ (form.querySelector("#s-message")).value;
    if (message.trim()) body.message = message;
    if (value("s-subject")) body.subject = value("s-subject");
    const sendAt = value("s-send-at");
    if (sendAt) {
      const when = new Date(sendAt);
      body.send_at = Number.isNaN(when.getTime()) ? sendAt : when.toISOString();
    }
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const idem = value("s-idem");
    submit.setAttribute("disabled", "");
    form.setAttribute("aria-busy", "true");
    replace(result, el("p", { class: "muted" }, "Sending…"));
    try {
      const { data } = await api("/notifications", { method: "POST", body: buildBody(), headers: idem ? { "Idempotency-Key": idem } : {} });
      if (!alive) return;
      hideBanner();
      replace(result, el("p", { class: "notice ok" }, "Accepted: ",
        el("a", { href: `#/notifications/${encodeURIComponent(data.id)}`, class: "mono" }, data.id),
        ` (status ${data.status})`));
    } catch (err) {
      if (!alive || !(err instanceof ApiError)) return;
      let message = err.message;
      if (err.status === 429) {
        const after = err.headers && err.headers.get("Retry-After");
        if (after) message += ` — retry after ${after} s.`;
      }
      replace(result, el("p", { class: "notice error", role: "alert" }, message));
      const first = showFieldErrors(err.body.details);
      if (first) first.focus();
      if (err.status === 0 || err.status >= 500) showBanner(err);
    } finally {
      submit.removeAttribute("disabled");
      form.removeAttribute("aria-busy");
    }
  });

  showView("Send a test notification",
    el("div", { class: "view-head" }, el("h1", null, "Send a test notification")),
    el("p", { class: "muted lead" }, "Creates a real notification through the public API; it is delivered like any other."),
    form);
  return () => { alive = false; };
}

/* ------------------------------------------------------------------ start */

/**
 * Asks the server first whether the API wants a key (admin/config.json), so that a keyed API is
 * never called without one (each 401 would be a console error); then shows the view.
 */
async function start() {
  setupKeyForm();
  window.addEventListener("hashchange", route);
  let keyRequired = false;
  try {
    const res = await fetch(new URL("admin/config.json", location.href), { cache: "no-store" });
    if (res.ok) keyRequired = Boolean((await res.json()).api_key_required);
  } catch { /* unknown: the first 401 opens the key form */ }
  if (keyRequired && !getKey()) {
    showKeyDialog();
    return; // the key form's submit shows the view
  }
  route();
}

start();

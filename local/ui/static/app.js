// The local runtime's web UI: polls the JSON API (local/ui/server.py) once a second.
// Plain DOM, no framework, no build step. Data is only ever set as text, never as HTML.
"use strict";

const POLL_MS = 1000;
const KEEP = 500;
const ui = {
  tab: null, overview: null, since: 0, invocations: [], events: [], lastShownSeq: 0,
  selected: null, view: null, rendered: {},
};

const $ = (selector) => document.querySelector(selector);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

async function postJson(path, document) {
  const response = await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(document),
  });
  return { status: response.status, body: await response.json() };
}

function ago(epochSeconds) {
  if (!epochSeconds) return "";
  const seconds = Math.round(Date.now() / 1000 - epochSeconds);
  if (seconds < -1) return `in ${friendly(-seconds)}`;
  if (seconds < 2) return "just now";
  return `${friendly(seconds)} ago`;
}

function friendly(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86400)} d`;
}

const isoSeconds = (iso) => (iso ? Date.parse(iso) / 1000 : 0);

// A relative time that stays current: tickTimes() rewrites its text, the node stays.
function agoEl(epochSeconds, tag = "span", suffix = "") {
  return el(tag, {
    class: "ago", "data-at": epochSeconds || "", "data-suffix": suffix, text: ago(epochSeconds) + suffix,
    title: epochSeconds ? new Date(epochSeconds * 1000).toISOString() : "",
  });
}

function tickTimes() {
  for (const node of document.querySelectorAll(".ago")) {
    node.textContent = ago(Number(node.dataset.at)) + (node.dataset.suffix || "");
  }
}

// Draw only what changed: the same data leaves the DOM (and its nodes) as they are.
function changed(name, data) {
  const signature = JSON.stringify(data);
  if (ui.rendered[`sig:${name}`] === signature) return false;
  ui.rendered[`sig:${name}`] = signature;
  return true;
}
const pill = (text, state) => el("span", { class: `pill s-${state || text}`, text });
const short = (value, limit = 160) => {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text && text.length > limit ? `${text.slice(0, limit - 1)}…` : text || "";
};

// --- tabs -------------------------------------------------------------------------------

function tabs() {
  const views = (ui.overview?.views || []).map((v) => ({ key: `view:${v.name}`, title: v.title }));
  return [
    ...views,
    { key: "activity", title: "Activity" },
    { key: "flow", title: "Event flow" },
    { key: "streams", title: "Streams and queues" },
    { key: "patterns", title: "Pattern sandbox" },
  ];
}

function showTab(key) {
  ui.tab = key;
  if (location.hash.slice(1) !== key) history.replaceState(null, "", `#${key}`);
  for (const button of document.querySelectorAll("nav button")) {
    button.classList.toggle("active", button.dataset.tab === key);
  }
  const panel = key.startsWith("view:") ? "views" : key;
  for (const section of document.querySelectorAll(".panel")) {
    section.hidden = section.id !== `panel-${panel}`;
  }
  if (key.startsWith("view:")) ui.view = key.slice(5);
  if (key === "patterns") fillSandbox();
  refresh();
}

function drawTabs() {
  const nav = $("#tabs");
  nav.replaceChildren(
    ...tabs().map((t) =>
      el("button", { type: "button", class: "tab", "data-tab": t.key, text: t.title, onclick: () => showTab(t.key) })),
  );
}

// --- activity and event flow -------------------------------------------------------------

function addActivity(snapshot) {
  if (snapshot.invocations.length || snapshot.events.length) {
    ui.invocations = [...snapshot.invocations, ...ui.invocations].slice(0, KEEP);
    ui.events = [...snapshot.events, ...ui.events].slice(0, KEEP);
    const seqs = [...snapshot.invocations, ...snapshot.events].map((e) => e.seq);
    ui.since = Math.max(ui.since, ...seqs);
  }
  const functions = new Set(ui.invocations.map((e) => e.function));
  const select = $("#filter-function");
  for (const name of functions) {
    if (![...select.options].some((o) => o.value === name)) select.append(el("option", { value: name, text: name }));
  }
}

function keepScroll(tbody, draw) {
  const before = tbody.offsetHeight;
  draw();
  if (window.scrollY > 0) window.scrollBy(0, tbody.offsetHeight - before);
}

function drawActivity() {
  const fn = $("#filter-function").value;
  const status = $("#filter-status").value;
  if (!changed("activity", [fn, status, ui.since])) return;
  const rows = ui.invocations.filter((e) => (!fn || e.function === fn) && (!status || e.result === status));
  const tbody = $("#activity tbody");
  const fresh = ui.rendered.activity || 0;
  keepScroll(tbody, () => tbody.replaceChildren(...rows.map((e) => el("tr",
    { class: e.seq > fresh && fresh ? "fresh" : "", "data-function": e.function, "data-result": e.result },
    agoEl(e.at, "td"),
    el("td", { text: e.function }),
    el("td", { text: e.source }),
    el("td", { text: e.records }),
    el("td", {}, pill(e.result)),
    el("td", { text: e.durationMs >= 1000 ? `${(e.durationMs / 1000).toFixed(1)} s` : `${e.durationMs} ms` }),
    el("td", { text: short(e.error || e.value), title: e.error || e.value || "" }),
  ))));
  ui.rendered.activity = Math.max(fresh, ...ui.invocations.map((e) => e.seq), 0);
}

function flowCell(entry) {
  const cell = el("td");
  for (const m of entry.matched) cell.append(pill(`${m.rule} → ${m.target}`, "matched"), " ");
  if (entry.refused) {
    cell.append(pill("refused by PutEvents", "failed"), " ", entry.refused);
    cell.title = entry.refused;
  } else if (!entry.matched.length) {
    const why = entry.unmatched.map((u) => `${u.rule}: ${u.reason}`).join("; ");
    cell.append(pill("no rule matched", "missing"), " ", why || "the app has no rules on this bus");
    cell.title = why;
  }
  return cell;
}

function drawFlow() {
  if (!changed("flow", ui.since)) return;
  const tbody = $("#flow tbody");
  const fresh = ui.rendered.flow || 0;
  keepScroll(tbody, () => tbody.replaceChildren(...ui.events.map((e) => el("tr",
    { class: e.seq > fresh && fresh ? "fresh" : "" },
    agoEl(e.at, "td"),
    el("td", { text: e.source }),
    el("td", { text: e.detailType }),
    el("td", { text: short(e.detail), title: JSON.stringify(e.detail) }),
    flowCell(e),
  ))));
  ui.rendered.flow = Math.max(fresh, ...ui.events.map((e) => e.seq), 0);
}

// --- the plug-in's board and timeline --------------------------------------------------------

function drawBoard(data) {
  const board = $("#board");
  if (changed("columns", data.columns)) {
    board.replaceChildren(...data.columns.map((column) => el("div",
      { class: `column col-${column.key}`, "data-column": column.key },
      el("h3", {}, column.title, el("span", { class: "count", text: "0" })),
      el("div", { class: "cards-in" }))));
  }
  const cache = ui.rendered.cards || new Map();
  const next = new Map();
  for (const card of data.cards) {
    const signature = JSON.stringify(card);
    const kept = cache.get(card.key);
    next.set(card.key, kept && kept.signature === signature ? kept : { signature, node: drawCard(card) });
  }
  ui.rendered.cards = next;
  for (const column of board.querySelectorAll(".column")) {
    const nodes = data.cards.filter((c) => c.column === column.dataset.column).map((c) => next.get(c.key).node);
    const holder = column.querySelector(".cards-in");
    const same = nodes.length === holder.children.length && nodes.every((n, i) => holder.children[i] === n);
    if (!same) holder.replaceChildren(...nodes);
    column.querySelector(".count").textContent = String(nodes.length);
  }
  for (const node of board.querySelectorAll(".card")) node.classList.toggle("selected", node.dataset.key === ui.selected);
}

function drawCard(card) {
  return el("div", {
    class: "card", "data-key": card.key, "data-state": card.state,
    onclick: () => openTimeline(card.key),
  },
  el("div", { class: "title" }, card.title, agoEl(isoSeconds(card.at), "span")),
  el("div", { class: "badges" }, ...card.badges.map((b) => pill(b.label, b.state))),
  el("div", { class: "note", text: card.note, title: card.note }));
}

async function openTimeline(key) {
  ui.selected = key;
  for (const card of document.querySelectorAll(".card")) card.classList.toggle("selected", card.dataset.key === key);
  await drawTimeline();
}

async function drawTimeline() {
  if (!ui.selected || !ui.view) return;
  const story = await getJson(`/api/views/${encodeURIComponent(ui.view)}/${encodeURIComponent(ui.selected)}`);
  $("#timeline").hidden = false;
  if (!changed("timeline", [ui.selected, story])) return;
  $("#timeline-title").textContent = story.title;
  const state = $("#timeline-state");
  state.textContent = story.state;
  state.className = `state s-${story.state}`;
  $("#timeline-entries").replaceChildren(...story.entries.map((e) => el("li",
    { class: `entry e-${e.event} st-${e.state}`, "data-event": e.event },
    el("div", { class: "at" }, agoEl(isoSeconds(e.at)), " · ", el("span", { class: "iso", text: e.at })),
    el("div", { class: "what", text: e.summary }))));
  $("#timeline-footer").textContent = story.footer || "";
}

// --- streams and queues -----------------------------------------------------------------

function drawStreams(data) {
  if (!changed("streams", data)) return;
  $("#mappings tbody").replaceChildren(...data.mappings.map((m) => el("tr", { "data-function": m.function },
    el("td", { text: m.function }), el("td", { text: m.source }), el("td", { text: m.waiting }),
    el("td", { text: m.inFlight }), el("td", { text: m.retrying }), el("td", { text: m.retries }),
    el("td", { text: m.onFailure || "—" }))));
  const asyncRows = data.async.length ? data.async : [{ function: "—", queued: 0, retrying: 0 }];
  $("#async tbody").replaceChildren(...asyncRows.map((a) => el("tr", {},
    el("td", { text: a.function }), el("td", { text: a.queued || 0 }), el("td", { text: a.retrying || 0 }))));
  const parked = $("#parked");
  parked.replaceChildren(...data.parked.map((p) => el("div", { class: "parked", "data-id": p.id, "data-source": p.source },
    el("div", { class: "title" }, el("strong", { text: p.label }), " ", agoEl(isoSeconds(p.at))),
    el("div", { class: "reason", text: p.reason }),
    el("button", { type: "button", class: "redrive", text: "Redrive", onclick: (ev) => redrive(ev.target, { parked: p.source, id: p.id }) }))));
  if (!data.parked.length) parked.append(el("span", { class: "muted", text: "nothing parked" }));
  $("#queues").replaceChildren(...data.queues.map(drawQueue));
}

function drawQueue(q) {
  const messages = q.messages.map((m) => el("div", { class: "message", "data-id": m.id },
    el("div", { class: "muted" }, agoEl(m.sentAt), ` · received ${m.receiveCount}×`),
    el("pre", { text: short(m.body, 400) }),
    el("button", {
      type: "button", class: "redrive", text: "Redrive",
      onclick: (ev) => redrive(ev.target, { queue: q.name, messageId: m.id }),
    })));
  return el("div", { class: "queue", "data-queue": q.name },
    el("div", { class: "head" },
      el("span", { class: "name", text: q.name }),
      el("span", { class: "muted", text: `${q.label} · ${q.owner}` }),
      pill(q.exists ? `${q.count} message(s)` : "not created", q.count ? "failed" : "ok")),
    el("div", { class: "messages" }, ...messages));
}

async function redrive(button, request) {
  button.disabled = true;
  const notice = $("#redrive-result");
  try {
    const { status, body } = await postJson("/api/redrive", request);
    notice.hidden = false;
    notice.classList.toggle("error", status !== 200);
    notice.textContent = status === 200 ? `redriven: ${body.detail || body.result}` : `not redriven: ${body.error}`;
  } finally {
    button.disabled = false;
    refresh();
  }
}

// --- pattern sandbox ------------------------------------------------------------------------

function sampleEvent() {
  const last = ui.events[0];
  return {
    version: "0", id: last?.eventId || "sandbox-1", "detail-type": last?.detailType || "example",
    source: last?.source || "shop", account: "123456789012", time: new Date().toISOString().slice(0, 19) + "Z",
    region: "us-east-1", resources: [], detail: last?.detail || {},
  };
}

function fillSandbox() {
  if (!$("#event").value.trim()) $("#event").value = JSON.stringify(sampleEvent(), null, 2);
  const rules = ui.overview?.rules || [];
  $("#rules").replaceChildren(...rules.map((r) => el("li", { class: "rule", "data-rule": r.name },
    el("strong", { text: r.name }), pill(r.enabled ? "ENABLED" : "DISABLED", r.enabled ? "ok" : "missing"),
    el("code", { text: JSON.stringify(r.pattern), title: JSON.stringify(r.pattern, null, 2) }),
    el("button", { type: "button", text: "test against this rule", onclick: () => {
      $("#pattern").value = JSON.stringify(r.pattern, null, 2);
      testPattern();
    } }))));
  if (!rules.length) $("#rules").append(el("li", { class: "muted", text: "the app has no EventBridge rules" }));
}

async function testPattern() {
  const result = $("#pattern-result");
  const { status, body } = await postJson("/api/pattern", { EventPattern: $("#pattern").value, Event: $("#event").value });
  if (status === 200) {
    result.dataset.outcome = body.Result ? "match" : "no-match";
    result.className = `result ${result.dataset.outcome}`;
    result.textContent = body.Result ? "✓ match  {\"Result\": true}" : "✗ no match  {\"Result\": false}";
  } else {
    result.dataset.outcome = "error";
    result.className = "result error";
    result.textContent = `${body.__type || "Error"}: ${body.message || body.error}`;
  }
}

// --- the loop -------------------------------------------------------------------------------

async function refresh() {
  try {
    addActivity(await getJson(`/api/activity?since=${ui.since}`));
    if (ui.tab === "activity") drawActivity();
    if (ui.tab === "flow") drawFlow();
    if (ui.tab === "streams") drawStreams(await getJson("/api/streams"));
    if (ui.tab?.startsWith("view:")) {
      drawBoard(await getJson(`/api/views/${encodeURIComponent(ui.view)}`));
      await drawTimeline();
    }
    tickTimes();
    $("#live").className = "live";
    $("#live").textContent = "live";
  } catch (error) {
    $("#live").className = "live stale";
    $("#live").textContent = `not updating: ${error.message}`;
  }
}

async function loop() {
  await refresh();
  setTimeout(loop, POLL_MS);
}

async function start() {
  $("#filter-function").addEventListener("change", drawActivity);
  $("#filter-status").addEventListener("change", drawActivity);
  $("#test-button").addEventListener("click", testPattern);
  $("#timeline-close").addEventListener("click", () => {
    ui.selected = null;
    ui.rendered["sig:timeline"] = null;
    $("#timeline").hidden = true;
    refresh();
  });
  try {
    ui.overview = await getJson("/api/overview");
  } catch (error) {
    ui.overview = { views: [], rules: [], functions: [] };
  }
  drawTabs();
  const wanted = location.hash.slice(1);
  showTab(tabs().some((t) => t.key === wanted) ? wanted : tabs()[0].key);
  window.addEventListener("hashchange", () => {
    const key = location.hash.slice(1);
    if (key !== ui.tab && tabs().some((t) => t.key === key)) showTab(key);
  });
  setTimeout(loop, POLL_MS);
}

start();

// kefu-qa review page. Plain JS, no build step, no CDN.
// Safety rule: transcript and user text only ever reach the page through
// textContent / createTextNode (never innerHTML), so "<script>" stays text.
"use strict";

const API = "/api/review";
const KEYS = [["1", "2", "3"], ["q", "w", "e"], ["a", "s", "d"], ["z", "x", "c"]];
const HEAD_NAMES = {politeness: "礼貌用语 politeness", emotional_control: "情绪管理 emotional control",
  resolution: "问题解决 resolution", sentiment: "顾客情绪 customer sentiment"};
const SPEAKERS = {agent: "客服 agent", customer: "顾客 customer", system: "系统 system"};

const state = {user: null, queue: [], item: null, selected: {}, openedAt: 0};

// ------------------------------------------------------------------ helpers
function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return node;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString("zh-CN", {hour12: false});
}

// Deadlines are counted in the review time zone (KEFUQA_REVIEW_TIMEZONE), so they are shown
// in it, named, whatever the browser's own zone is.
function fmtDeadline(iso, tz) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d) || !tz) return fmtTime(iso);
  try {
    return d.toLocaleString("zh-CN", {timeZone: tz, hour12: false, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit"}) + " " + tz;
  } catch (e) { return fmtTime(iso) + " (" + tz + ")"; }
}

function toast(msg, bad) {
  const t = $("toast");
  t.textContent = msg;
  t.className = bad ? "show bad" : "show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = ""; }, 3500);
}

class ApiError extends Error {
  constructor(status, body) {
    const d = body && body.detail;
    const field = (x) => x && x.msg ? `${(x.loc || []).slice(1).join(".")}: ${x.msg}` : String(x);
    const msg = d && typeof d === "object" && !Array.isArray(d) ? d.message : (Array.isArray(d) ? d.map(field).join("; ") : d);
    super(msg || ("HTTP " + status));
    this.status = status; this.body = body;
  }
}

async function api(method, path, body) {
  const opts = {method, headers: {"Accept": "application/json"}, credentials: "same-origin"};
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const res = await fetch(API + path, opts);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = {detail: text}; }
  if (res.status === 401 && path !== "/login") { state.user = null; showLogin(); }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

function can(...roles) { return state.user && roles.includes(state.user.role); }
function isReviewer() { return can("reviewer", "lead", "admin"); }

// ------------------------------------------------------------------ views
function show(view) {
  // A slow view's answer can arrive after the reviewer has moved on (the queue still loading when
  // Users is clicked): only the view the address names may take the screen.
  const named = (location.hash || "").split("/")[1];
  if (view !== "login" && named && named !== view) return;
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + view;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.getAttribute("href") === "#/" + view);
}

function showLogin() {
  $("nav").hidden = true; $("logout").hidden = true; $("who").textContent = "";
  show("login");
  $("login-name").focus();
}

async function route() {
  if (!state.user) {
    try { state.user = (await api("GET", "/session")).user; } catch (e) { state.user = null; }
    if (!state.user) { showLogin(); return; }
    setupNav();
  }
  const [, view, arg] = (location.hash || "").split("/");
  const fallback = isReviewer() ? "queue" : "mine";
  try {
    switch (view) {
      case "item": await openItem(decodeURIComponent(arg || "")); break;
      case "queue": await showQueue(); break;
      case "disputes": await showDisputes(); break;
      case "mine": await showMine(); break;
      case "agreement": await showAgreement(); break;
      case "audit": await showAudit(); break;
      case "rules": await showRules(); break;
      case "users": await showUsers(); break;
      default: location.hash = "#/" + fallback;
    }
  } catch (e) {
    if (e.status !== 401) toast(e.message, true);
  }
}

function setupNav() {
  $("nav").hidden = false; $("logout").hidden = false;
  $("who").textContent = state.user.name + " · " + state.user.role + (state.user.team ? " · " + state.user.team : "");
  for (const a of document.querySelectorAll("#nav a")) {
    const roles = a.dataset.roles;
    a.hidden = roles ? !roles.split(" ").includes(state.user.role) : false;
  }
}

// ------------------------------------------------------------------ queue
async function loadQueue() {
  const q = await api("GET", "/queue?limit=100");
  state.queue = q.items;
  return q;
}

async function showQueue() {
  const q = await loadQueue();
  show("queue");
  $("queue-counts").textContent = `${q.open_disputes} open disputes · ${q.open_tasks} items to review`;
  const body = clear(document.querySelector("#queue-table tbody"));
  q.items.forEach((it, i) => {
    body.appendChild(el("tr", {class: it.kind === "dispute" ? "dispute" : "", dataset: {id: it.conversation_id},
      onclick: () => { location.hash = "#/item/" + encodeURIComponent(it.conversation_id); }},
      el("td", {}, String(i + 1)),
      el("td", {}, it.kind === "dispute" ? `dispute #${it.dispute_id} (L${it.level})`
        : (it.kind === "adjudicate" ? "adjudicate" : "review" + (it.double ? " ×2" : ""))),
      el("td", {}, el("a", {href: "#/item/" + encodeURIComponent(it.conversation_id), class: "queue-link"}, it.conversation_id)),
      el("td", {}, it.kind === "dispute" ? "申诉" : (it.kind === "adjudicate" ? "reviewers differ: " + it.labels_differ.join(", ") : it.reason)),
      el("td", {}, it.uncertainty !== undefined ? it.uncertainty.toFixed(2) : ""),
      el("td", {class: it.overdue ? "overdue" : ""}, it.due_at ? fmtDeadline(it.due_at, q.timezone) + (it.overdue ? " overdue" : "") : "")));
  });
  if (!q.items.length) body.appendChild(el("tr", {}, el("td", {colspan: 6}, "Nothing to review. 队列为空")));
}

function renderSideQueue(currentId) {
  const list = clear($("side-queue"));
  for (const it of state.queue.slice(0, 30)) {
    list.appendChild(el("li", {class: it.conversation_id === currentId ? "current" : ""},
      el("a", {href: "#/item/" + encodeURIComponent(it.conversation_id)},
        el("span", {class: "tag " + it.kind}, it.kind === "dispute" ? "申诉"
          : (it.kind === "adjudicate" ? "裁定" : (it.reason === "sample" ? "sample" : "uncertain"))),
        " ", it.conversation_id)));
  }
}

async function nextItem() {
  const current = state.item && state.item.conversation.id;
  await loadQueue();
  const next = state.queue.find((it) => it.conversation_id !== current);
  if (next) location.hash = "#/item/" + encodeURIComponent(next.conversation_id);
  else { toast("Queue done 队列已完成"); location.hash = "#/queue"; }
}

// ------------------------------------------------------------------ item
async function openItem(id) {
  if (isReviewer() && !state.queue.length) { try { await loadQueue(); } catch (e) { /* the item still opens */ } }
  const item = await api("GET", "/items/" + encodeURIComponent(id));
  state.item = item;
  state.openedAt = Date.now();
  const p = item.prediction;
  state.selected = Object.assign({}, p ? p.labels : {}, item.task.final_labels || {});
  show("item");
  $("item-alert").hidden = true;
  $("comment").value = "";
  renderSideQueue(id);
  $("item-title").textContent = item.conversation.id;
  $("item-meta").textContent = [
    "agent " + item.conversation.agent_id, item.conversation.team ? "team " + item.conversation.team : "",
    item.conversation.channel, item.conversation.started_at ? fmtTime(item.conversation.started_at) : "",
    p ? `model ${p.model.name} ${p.model.version}` : "no prediction"].filter(Boolean).join(" · ");
  renderStatus();
  renderChat(item);
  renderEvidenceFeedback(item);  // review-evidence.js: verdicts on the chips, missed spans
  renderSpeakerChecks(item);  // review-speakers.js: who said a turn of a call
  renderHeads();
  renderReviews();
  renderItemDisputes();
  const editable = item.can_review;
  for (const b of ["confirm", "save"]) $(b).hidden = !editable;
  $("next").hidden = !isReviewer();
  $("comment").closest("label").hidden = !editable;
  $("keys-help").hidden = !editable;
  document.querySelector(".queue-side").hidden = !isReviewer();
  document.querySelector(".item-layout").classList.toggle("no-queue", !isReviewer());
  loadItemAudit(id);
}

function renderStatus() {
  const t = state.item.task;
  const parts = [`version ${t.version}`];
  if (t.status === "none") parts.push("not in the review queue");
  else parts.push(t.status === "done" ? "reviewed" : "to review", t.reason ? "(" + t.reason + ")" : "");
  if (t.double) parts.push("· two reviewers");
  if (t.final_labels && t.final_by) parts.push(`· saved by ${t.final_by} ${fmtTime(t.final_at)} (${t.final_source})`);
  if (state.item.blind) parts.push("· blind: your independent review");
  $("item-status").textContent = parts.join(" ");
}

function highlightText(text, spans) {
  // spans: [{start, end, rule}] in this turn's text; overlapping spans are merged into the first.
  const frag = document.createDocumentFragment();
  let pos = 0;
  for (const sp of spans.slice().sort((a, b) => a.start - b.start)) {
    if (sp.start < pos) continue;
    if (sp.start > pos) frag.appendChild(document.createTextNode(text.slice(pos, sp.start)));
    frag.appendChild(el("mark", {title: sp.rule, class: "ev"}, text.slice(sp.start, sp.end)));
    pos = sp.end;
  }
  if (pos < text.length) frag.appendChild(document.createTextNode(text.slice(pos)));
  return frag;
}

function spansFor(turn, evidence) {
  const out = [];
  for (const ev of evidence) {
    if (ev.turn !== turn.index) continue;
    let {start, end} = ev;
    if (!(start >= 0 && end <= turn.text.length && start < end) || (ev.text && turn.text.slice(start, end) !== ev.text)) {
      const at = ev.text ? turn.text.indexOf(ev.text) : -1;  // offsets from another masking: find the words
      if (at < 0) continue;
      start = at; end = at + ev.text.length;
    }
    out.push({start, end, rule: ev.rule});
  }
  return out;
}

function renderChat(item) {
  const chat = clear($("chat"));
  const evidence = item.prediction ? item.prediction.evidence : [];
  const sentiment = {};
  for (const t of item.prediction ? item.prediction.turn_sentiment : []) sentiment[t.index] = t.sentiment;
  for (const turn of item.conversation.turns) {
    const spans = spansFor(turn, evidence);
    const meta = [SPEAKERS[turn.speaker] || turn.speaker, "#" + turn.index, turn.ts ? fmtTime(turn.ts) : "",
      sentiment[turn.index] !== undefined ? "情绪 " + Number(sentiment[turn.index]).toFixed(2) : ""].filter(Boolean).join(" · ");
    chat.appendChild(el("div", {class: "turn " + turn.speaker + (spans.length ? " has-ev" : ""), id: "turn-" + turn.index},
      el("div", {class: "meta"}, meta),
      el("div", {class: "bubble"}, highlightText(turn.text, spans))));
  }
  const list = clear($("evidence-list"));
  if (evidence.length) list.appendChild(el("span", {class: "muted"}, "Evidence 证据: "));
  for (const ev of evidence) {
    list.appendChild(el("button", {type: "button", class: "chip", title: "turn " + ev.turn,
      onclick: () => { const n = $("turn-" + ev.turn); if (n) n.scrollIntoView({block: "center"}); }},
      `${ev.rule} “${ev.text}” #${ev.turn}`));
  }
}

// An agent who may still dispute the score picks the labels they think are right on the same
// buttons; the dispute sends the ones that differ from the score (an optional proposal).
function proposing() { return can("agent") && state.item && !state.item.disputes.length; }

function proposedLabels() {
  const current = Object.assign({}, state.item.prediction ? state.item.prediction.labels : {}, state.item.task.final_labels || {});
  const out = {};
  for (const [head, value] of Object.entries(state.selected)) if (current[head] !== value) out[head] = value;
  return Object.keys(out).length ? out : null;
}

function renderHeads() {
  const item = state.item;
  const box = clear($("heads"));
  const p = item.prediction;
  const editable = item.can_review || proposing();
  Object.entries(item.labels).forEach(([head, values], h) => {
    const fs = el("fieldset", {class: "head", dataset: {head}},
      el("legend", {}, HEAD_NAMES[head] || head, " ",
        item.can_review ? el("span", {class: "keys muted"}, KEYS[h].join(" ")) : null));
    values.forEach((value, v) => {
      const prob = p && p.probs[head] ? p.probs[head][value] : null;
      const predicted = p && p.labels[head] === value;
      const btn = el("button", {type: "button", class: "choice", dataset: {head, value},
        "aria-pressed": state.selected[head] === value ? "true" : "false", disabled: !editable,
        title: `${head} = ${value} (key ${KEYS[h][v]})`, onclick: () => choose(head, value)},
        el("span", {class: "val"}, value),
        el("span", {class: "row"}, el("span", {class: "prob"}, prob === null ? "" : (prob * 100).toFixed(0) + "%"),
          predicted ? el("span", {class: "badge"}, "model") : null),
        el("span", {class: "bar", style: null}));
      if (prob !== null) btn.querySelector(".bar").style.width = Math.round(prob * 100) + "%";
      fs.appendChild(btn);
    });
    box.appendChild(fs);
  });
}

function choose(head, value) {
  state.selected[head] = value;
  for (const b of document.querySelectorAll(`.choice[data-head="${head}"]`))
    b.setAttribute("aria-pressed", b.dataset.value === value ? "true" : "false");
}

async function saveLabels(labels) {
  const item = state.item;
  const body = {labels, version: item.task.version, comment: $("comment").value,
    lead_time: Math.round((Date.now() - state.openedAt) / 100) / 10};
  try {
    const task = await api("POST", "/items/" + encodeURIComponent(item.conversation.id) + "/review", body);
    toast(`Saved 已保存 (version ${task.version})`);
    state.queue = state.queue.filter((it) => it.kind !== "review" || it.conversation_id !== item.conversation.id);
    await openItem(item.conversation.id);
  } catch (e) {
    const alert = $("item-alert");
    clear(alert).appendChild(document.createTextNode(e.message + " "));
    if (e.status === 409) alert.appendChild(el("button", {type: "button", onclick: () => openItem(item.conversation.id)}, "Reload"));
    alert.hidden = false;
  }
}

function renderReviews() {
  const list = clear($("item-reviews"));
  for (const r of state.item.reviews) {
    list.appendChild(el("li", {}, el("b", {}, r.reviewer), ` ${r.kind} ${fmtTime(r.created_at)}: `,
      Object.entries(r.labels).map(([k, v]) => `${k}=${v}`).join(", "), r.comment ? el("div", {class: "quote"}, r.comment) : null));
  }
  $("item-reviews-box").hidden = !state.item.reviews.length;
  $("item-reviews-box").open = new Set(state.item.reviews.map((r) => r.reviewer)).size > 1;
}

async function loadItemAudit(id) {
  const list = clear($("item-audit"));
  $("item-audit-box").hidden = !isReviewer();
  if (!isReviewer()) return;
  const data = await api("GET", "/items/" + encodeURIComponent(id) + "/audit");
  for (const e of data.entries) list.appendChild(el("li", {}, auditLine(e)));
}

function labelsText(x) {
  if (!x) return "—";
  if ("labels" in x && !("dispute" in x)) {
    if (!x.labels) return "—";
    return Object.entries(x.labels).map(([k, v]) => `${k}=${v}`).join(", ") + (x.comment ? ` · “${x.comment}”` : "");
  }
  return Object.entries(x).filter(([k]) => k !== "version").map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
}

function auditLine(e) {
  return el("span", {}, el("time", {}, fmtTime(e.at)), " ", el("b", {}, e.actor), " ", el("code", {}, e.action),
    ": ", labelsText(e.before), " → ", labelsText(e.after));
}

// ------------------------------------------------------------------ wiring
function onKey(ev) {
  if (ev.target.closest("textarea, input, select") || ev.ctrlKey || ev.metaKey || ev.altKey) {
    if (ev.key === "Escape") ev.target.blur();
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && ev.target.id === "comment") { ev.preventDefault(); $("save").click(); }
    return;
  }
  const view = document.querySelector(".view:not([hidden])");
  if (!view) return;
  if (view.id === "view-queue" && ev.key === "Enter") { ev.preventDefault(); $("queue-open-first").click(); return; }
  if (view.id !== "view-item" || !state.item) return;
  if (ev.key === "n") { ev.preventDefault(); nextItem(); return; }
  if (!state.item.can_review) return;
  const key = ev.key.toLowerCase();
  const heads = Object.keys(state.item.labels);
  for (let h = 0; h < KEYS.length; h++) {
    const v = KEYS[h].indexOf(key);
    if (v >= 0 && heads[h]) { ev.preventDefault(); choose(heads[h], state.item.labels[heads[h]][v]); return; }
  }
  if (ev.key === "Enter") { ev.preventDefault(); $("save").click(); }
  else if (key === "y") { ev.preventDefault(); $("confirm").click(); }
  else if (key === "r") { ev.preventDefault(); state.selected = Object.assign({}, state.item.prediction ? state.item.prediction.labels : {}); renderHeads(); }
  else if (ev.key === "/") { ev.preventDefault(); $("comment").focus(); }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    try {
      const r = await api("POST", "/login", {name: $("login-name").value, password: $("login-password").value});
      state.user = r.user; $("login-password").value = "";
      setupNav();
      if (!location.hash || location.hash === "#/") location.hash = isReviewer() ? "#/queue" : "#/mine";
      else await route();
    } catch (e) { $("login-error").textContent = e.message; }
  });
  $("logout").addEventListener("click", async () => {
    try { await api("POST", "/logout", {}); } finally { state.user = null; state.queue = []; location.hash = ""; showLogin(); }
  });
  $("label-form").addEventListener("submit", (ev) => { ev.preventDefault(); saveLabels(Object.assign({}, state.selected)); });
  $("confirm").addEventListener("click", () => {
    if (!state.item.prediction) { toast("No model labels to confirm", true); return; }
    saveLabels(Object.assign({}, state.item.prediction.labels));
  });
  $("next").addEventListener("click", () => nextItem());
  $("queue-refresh").addEventListener("click", () => showQueue());
  $("queue-open-first").addEventListener("click", () => {
    if (state.queue.length) location.hash = "#/item/" + encodeURIComponent(state.queue[0].conversation_id);
  });
  $("dispute-filter").addEventListener("change", () => showDisputes());
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", route);
  route();
});

// kefu-qa review page: reviewers mark each evidence chip right or wrong, add the spans the
// rules missed (select words in a turn), and leads see each rule's precision (Rules view).
// Loaded after review.js, whose helpers (el, api, state …) it uses. Same rule: user text
// only through textContent, never innerHTML.
"use strict";

const evidenceState = {item: null, feedback: null, pending: null};

function itemPath(item) { return "/items/" + encodeURIComponent(item.conversation.id); }
function markKey(m) { return [m.rule, m.turn, m.start, m.end].join("|"); }
function pct(x) { return x === null || x === undefined ? "—" : Math.round(x * 100) + "%"; }

// ------------------------------------------------------------------ item: chips and missed spans
async function renderEvidenceFeedback(item) {
  evidenceState.item = item;
  evidenceState.feedback = null;
  evidenceState.pending = null;
  const box = clear($("evidence-missed"));
  box.hidden = true;
  if (!isReviewer()) return;
  let feedback;
  try { feedback = await api("GET", itemPath(item) + "/evidence"); }
  catch (e) { if (e.status !== 401) toast(e.message, true); return; }
  if (state.item !== item) return;  // another item was opened meanwhile
  evidenceState.feedback = feedback;
  drawChips(item);
  drawMissed(item);
}

function drawChips(item) {
  const evidence = item.prediction ? item.prediction.evidence : [];
  const list = clear($("evidence-list"));
  if (!evidence.length) return;
  const fb = evidenceState.feedback;
  const mine = new Map(fb.marks.map((m) => [markKey(m), m.verdict]));
  const others = new Map();
  for (const m of fb.others.marks) {
    const count = others.get(markKey(m)) || {right: 0, wrong: 0};
    count[m.verdict] += 1;
    others.set(markKey(m), count);
  }
  list.appendChild(el("span", {class: "muted"}, "Evidence 证据 (✓ right 命中正确 · ✗ wrong 误判): "));
  evidence.forEach((ev, i) => {
    const verdict = mine.get(markKey(ev));
    const o = others.get(markKey(ev));
    list.appendChild(el("span", {class: "chip-group" + (verdict ? " " + verdict : ""), dataset: {index: i, rule: ev.rule}},
      el("button", {type: "button", class: "chip", title: "turn " + ev.turn,
        onclick: () => { const n = $("turn-" + ev.turn); if (n) n.scrollIntoView({block: "center"}); }},
        `${ev.rule} “${ev.text}” #${ev.turn}`),
      verdictButton(item, ev, "right", verdict), verdictButton(item, ev, "wrong", verdict),
      o ? el("span", {class: "others muted", title: "other reviewers' marks"}, `others ${o.right}✓ ${o.wrong}✗`) : null));
  });
  if (!fb.others_visible) list.appendChild(el("span", {class: "muted"}, "· others' marks show once your review is in"));
}

function verdictButton(item, ev, verdict, current) {
  const on = current === verdict;
  return el("button", {type: "button", class: "verdict " + verdict, "aria-pressed": on ? "true" : "false",
    title: on ? "withdraw your mark" : (verdict === "right" ? "the rule hit is right" : "the rule hit is wrong (context-blind)"),
    onclick: () => sendMark(item, ev, on ? null : verdict)}, verdict === "right" ? "✓" : "✗");
}

async function sendMark(item, ev, verdict) {
  try {
    await api("POST", itemPath(item) + "/evidence/marks",
      {turn: ev.turn, start: ev.start, end: ev.end, rule: ev.rule, verdict});
    toast(verdict ? `Marked ${verdict} 已标记` : "Mark withdrawn 已撤销");
    await renderEvidenceFeedback(item);
    loadItemAudit(item.conversation.id);
  } catch (e) { toast(e.message, true); }
}

function drawMissed(item) {
  const fb = evidenceState.feedback;
  const box = clear($("evidence-missed"));
  box.hidden = false;
  box.appendChild(el("span", {class: "muted"}, "Missed 漏检: "));
  for (const m of fb.missed) {
    box.appendChild(el("span", {class: "missed-chip", dataset: {id: m.id}}, `${m.label} “${m.text}” #${m.turn}`,
      el("button", {type: "button", class: "remove", title: "withdraw this span", onclick: () => removeMissed(item, m)}, "×")));
  }
  for (const m of fb.others.missed) {
    box.appendChild(el("span", {class: "missed-chip other"}, `${m.reviewer}: ${m.label} “${m.text}” #${m.turn}`));
  }
  const p = evidenceState.pending;
  if (!p) {
    box.appendChild(el("span", {class: "muted"}, "select words in a turn to add a span the rules missed"));
    return;
  }
  const label = el("select", {id: "missed-label", "aria-label": "label the span bears on"},
    Object.keys(item.labels).map((name) => el("option", {value: name}, HEAD_NAMES[name] || name)));
  box.appendChild(el("span", {class: "missed-new"}, `#${p.turn} “${p.text}” → `, label,
    el("button", {type: "button", id: "missed-add", class: "primary", onclick: () => addMissed(item, p, label.value)},
      "Add missed span 添加漏检"),
    el("button", {type: "button", onclick: () => { evidenceState.pending = null; drawMissed(item); }}, "Cancel")));
}

async function addMissed(item, span, label) {
  try {
    await api("POST", itemPath(item) + "/evidence/missed", {turn: span.turn, start: span.start, end: span.end, label});
    toast("Missed span added 已添加漏检");
    await renderEvidenceFeedback(item);
    loadItemAudit(item.conversation.id);
  } catch (e) { toast(e.message, true); }
}

async function removeMissed(item, span) {
  try {
    await api("DELETE", itemPath(item) + "/evidence/missed/" + span.id, {});
    toast("Missed span withdrawn 已撤销");
    await renderEvidenceFeedback(item);
    loadItemAudit(item.conversation.id);
  } catch (e) { toast(e.message, true); }
}

function bubbleOf(node) {
  const elem = node && (node.nodeType === Node.ELEMENT_NODE ? node : node.parentElement);
  return elem ? elem.closest("#chat .bubble") : null;
}

// The selection inside one turn's bubble as offsets in the turn's text (the bubble holds
// exactly that text, split into text nodes and <mark>s).
function selectedSpan() {
  const sel = document.getSelection();
  if (!sel || sel.isCollapsed || !sel.rangeCount) return null;
  const range = sel.getRangeAt(0);
  const bubble = bubbleOf(range.startContainer);
  if (!bubble || bubble !== bubbleOf(range.endContainer)) return null;
  const before = document.createRange();
  before.setStart(bubble, 0);
  before.setEnd(range.startContainer, range.startOffset);
  const start = before.toString().length;
  const text = range.toString();
  return {turn: Number(bubble.closest(".turn").id.slice("turn-".length)), start, end: start + text.length, text};
}

function onSelection() {
  const item = evidenceState.item;
  if (!item || state.item !== item || !evidenceState.feedback) return;
  const span = selectedSpan();
  if (!span || !span.text.trim()) return;  // a click elsewhere keeps the pending span
  evidenceState.pending = span;
  drawMissed(item);
}

// ------------------------------------------------------------------ leads: rule precision
async function showRules() {
  const min = Math.max(1, Math.floor(Number($("rules-min-marks").value)) || 5);
  const r = await api("GET", "/rules/stats?min_marks=" + min);
  show("rules");
  const fix = new Set(r.fix_first);
  $("rules-fix-first").textContent = r.fix_first.length
    ? "Fix first 优先修正 (lowest lower bound of precision): " + r.fix_first.join(", ")
    : `Fix first: none yet (no rule has ${r.min_marks} or more marks with one marked wrong)`;
  const body = clear(document.querySelector("#rules-table tbody"));
  for (const s of r.rules) {
    body.appendChild(el("tr", {class: fix.has(s.rule) ? "fix" : (s.enough_marks ? "" : "few"), dataset: {rule: s.rule}},
      el("td", {}, el("code", {}, s.rule)), el("td", {}, String(s.hits)), el("td", {}, String(s.marks)),
      el("td", {}, String(s.wrong)), el("td", {}, pct(s.wrong_rate)), el("td", {}, pct(s.precision)),
      el("td", {}, s.low === null ? "—" : `${pct(s.low)}–${pct(s.high)}` + (s.enough_marks ? "" : " (few marks)"))));
  }
  if (!r.rules.length) body.appendChild(el("tr", {}, el("td", {colspan: 7}, "No rule hits or marks yet. 暂无数据")));
  $("rules-missed").textContent = `${r.marks} marks on ${r.conversations} conversations. Missed spans 漏检: ` +
    (Object.entries(r.missed).map(([k, v]) => `${k} ${v}`).join(", ") || "none");
}

document.addEventListener("DOMContentLoaded", () => {
  document.addEventListener("selectionchange", onSelection);
  $("rules-min-marks").addEventListener("change", () => showRules().catch((e) => toast(e.message, true)));
});

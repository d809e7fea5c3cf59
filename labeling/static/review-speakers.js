// kefu-qa review page: who said a turn of a call. The scorer flags voice turns that read like
// the other role (prediction.role_flags); reviewers confirm the flag or keep the transcript's
// speaker, and can fix a turn the check missed. Loaded after review.js, whose helpers (el, api,
// state …) it uses. Same rule: user text only through textContent, never innerHTML.
"use strict";

const speakerState = {item: null, answers: null};

function otherRole(speaker) { return speaker === "agent" ? "customer" : "agent"; }

async function renderSpeakerChecks(item) {
  speakerState.item = item;
  speakerState.answers = null;
  if (item.conversation.channel !== "voice") return;
  if (isReviewer()) {
    try { speakerState.answers = await api("GET", "/items/" + encodeURIComponent(item.conversation.id) + "/speakers"); }
    catch (e) { if (e.status !== 401) toast(e.message, true); return; }
    if (state.item !== item) return;  // another item was opened meanwhile
  }
  drawSpeakerChecks(item);
}

function drawSpeakerChecks(item) {
  const flags = new Map(((item.prediction && item.prediction.role_flags) || []).map((f) => [f.turn, f]));
  const answers = speakerState.answers;
  const mine = new Map(answers ? answers.fixes.map((f) => [f.turn, f.speaker]) : []);
  const others = new Map();
  for (const f of answers ? answers.others : []) others.set(f.turn, (others.get(f.turn) || []).concat([f]));
  for (const turn of item.conversation.turns) {
    const node = $("turn-" + turn.index);
    if (!node || (turn.speaker !== "agent" && turn.speaker !== "customer")) continue;
    const old = node.querySelector(".speaker-check");
    if (old) old.remove();
    const flag = flags.get(turn.index);
    if (!flag && !answers) continue;
    node.classList.toggle("role-flag", Boolean(flag));
    node.appendChild(speakerCheck(item, turn, flag, mine.get(turn.index), others.get(turn.index) || []));
  }
}

function speakerCheck(item, turn, flag, answer, others) {
  const box = el("div", {class: "speaker-check" + (flag ? " flagged" : ""), dataset: {turn: turn.index}});
  if (flag) {
    box.appendChild(el("span", {class: "flag-note", title: "speaker-role check: the text reads like the other role"},
      `可能是${SPEAKERS[flag.likely_speaker] || flag.likely_speaker} · ${Math.round(flag.p * 100)}%`));
  }
  if (speakerState.answers) {
    const other = otherRole(turn.speaker);
    if (flag || answer) box.appendChild(speakerButton(item, turn, turn.speaker, answer, "keep"));
    box.appendChild(speakerButton(item, turn, other, answer, flag ? "confirm" : "fix"));
  }
  for (const o of others) {
    box.appendChild(el("span", {class: "others muted"}, `${o.reviewer}: ${SPEAKERS[o.speaker] || o.speaker}`));
  }
  return box;
}

function speakerButton(item, turn, speaker, answer, kind) {
  const on = answer === speaker;
  const label = kind === "keep" ? `是${SPEAKERS[speaker]}说的` : (kind === "confirm" ? `确认: ${SPEAKERS[speaker]}说的`
    : `⇄ 是${SPEAKERS[speaker]}说的`);
  return el("button", {type: "button", class: "speaker-answer " + kind, "aria-pressed": on ? "true" : "false",
    title: on ? "withdraw your answer" : `turn ${turn.index} was said by the ${speaker}`,
    onclick: () => sendSpeaker(item, turn.index, on ? null : speaker)}, label);
}

async function sendSpeaker(item, turn, speaker) {
  try {
    await api("POST", "/items/" + encodeURIComponent(item.conversation.id) + "/speakers", {turn, speaker});
    toast(speaker ? "Speaker saved 已记录说话人" : "Answer withdrawn 已撤销");
    await renderSpeakerChecks(item);
    loadItemAudit(item.conversation.id);
  } catch (e) { toast(e.message, true); }
}

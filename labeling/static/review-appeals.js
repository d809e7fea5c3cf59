// kefu-qa review page: appeals on a period grade (申诉(绩效)), shown under the disputes.
// Agents file one and follow its timeline; the lead of their team acknowledges, decides and
// records the notification; admins decide re-appeals. Loaded after review.js, whose helpers
// (el, api, state, toast …) it uses; user text only through textContent.
"use strict";

// The rubric's grades come with the list of appeals (KEFUQA_REVIEW_APPEAL_GRADES).
let appealGrades = ["优秀", "良好", "中等", "合格", "不合格"];
const APPEAL_STEPS = {filed: "提交 filed", acknowledged: "受理 acknowledged", decided: "决定 decided",
  notified: "告知 notified", reappealed: "再申诉 re-appealed"};

function appealOptions(values, first) {
  return [first ? el("option", {value: ""}, first) : null, ...values.map((v) => el("option", {value: v}, v))];
}

function appealAct(path, body, done) {
  return async () => {
    try { await api("POST", path, body()); toast(done); await showAppeals(); }
    catch (e) { toast(e.message, true); }
  };
}

function appealFileForm() {
  const period = el("input", {id: "appeal-period", placeholder: "2026-11 / 2026-Q4 / 2026", size: 14});
  const grade = el("select", {id: "appeal-grade"}, appealOptions([...appealGrades, "数据不足"]));
  const score = el("input", {id: "appeal-score", type: "number", min: 0, max: 100, step: "0.1", placeholder: "score"});
  const reason = el("textarea", {id: "appeal-reason", rows: 2, placeholder: "What is wrong with the grade? 申诉理由"});
  const error = el("p", {id: "appeal-error", class: "error", role: "alert"});
  const submit = el("button", {type: "button", class: "primary", id: "appeal-submit", onclick: async () => {
    error.textContent = "";
    const body = {period: period.value.trim(), grade: grade.value, reason: reason.value,
      score: score.value === "" ? null : Number(score.value)};
    try { await api("POST", "/appeals", body); toast("Appeal filed 已提交"); await showAppeals(); }
    catch (e) { error.textContent = e.message; }
  }}, "File appeal 提交申诉");
  return el("div", {class: "inline-form", id: "appeal-form"},
    el("label", {}, "Period 考核期 ", period), el("label", {}, "Grade 等级 ", grade),
    el("label", {}, "Score 分数 ", score), el("label", {}, "Reason 理由 ", reason), submit, error);
}

function appealHandles(a) {
  if (can("admin")) return true;
  return can("lead") && a.level === 1 && a.team === state.user.team;
}

function appealActions(a) {
  const url = `/appeals/${a.id}`;
  const text = el("textarea", {rows: 2, class: "appeal-text"});
  if (a.agent === state.user.name && a.status === "notified" && a.level === 1) {
    text.placeholder = "Why the decision is wrong (once, to an admin) 再申诉理由";
    return [text, el("div", {class: "actions"}, el("button", {type: "button", class: "primary appeal-reappeal",
      onclick: appealAct(url + "/reappeal", () => ({version: a.version, reason: text.value}), "Re-appealed 已再申诉")},
      `Re-appeal 再申诉 (until ${fmtDeadline(a.reappeal_until, a.timezone)})`))];
  }
  if (!appealHandles(a)) return [];
  if (a.status === "filed") {
    text.placeholder = "Receipt and procedure for the agent (optional) 受理说明";
    return [text, el("div", {class: "actions"}, el("button", {type: "button", class: "primary appeal-ack",
      onclick: appealAct(url + "/acknowledge", () => ({version: a.version, note: text.value}), "Acknowledged 已受理")},
      "Acknowledge 受理"))];
  }
  if (a.status === "acknowledged" || a.status === "reappealed") {
    text.placeholder = "Written reasons the agent receives 决定理由";
    const outcome = el("select", {class: "appeal-outcome"},
      el("option", {value: "upheld"}, "upheld 维持"), el("option", {value: "overturned"}, "overturned 改判"));
    const grade = el("select", {class: "appeal-new-grade"}, appealOptions(appealGrades, "new grade 新等级"));
    const body = () => ({version: a.version, outcome: outcome.value, reason: text.value,
      new_grade: outcome.value === "overturned" ? grade.value || null : null});
    return [text, el("div", {class: "actions"}, outcome, grade, el("button", {type: "button",
      class: "primary appeal-decide", onclick: appealAct(url + "/decide", body, "Decided 已决定")}, "Decide 决定"))];
  }
  if (a.status === "decided") {
    text.placeholder = "How the agent was told (optional) 告知方式";
    return [text, el("div", {class: "actions"}, el("button", {type: "button", class: "primary appeal-notify",
      onclick: appealAct(url + "/notify", () => ({version: a.version, note: text.value}), "Notification recorded 已告知")},
      "Record notification 记录告知"))];
  }
  return [];
}

function appealCard(a) {
  const grade = a.final_grade && a.final_grade !== a.grade ? `${a.grade} → ${a.final_grade}` : a.grade;
  const next = a.next_step && a.due_at ? ` · next: ${a.next_step} by ${a.waiting_for}, due ${fmtDeadline(a.due_at, a.timezone)}` : "";
  return el("div", {class: "dispute-card appeal-card" + (a.overdue ? " overdue" : ""), dataset: {id: String(a.id)}},
    el("div", {}, el("b", {}, `绩效申诉 #${a.id} · ${a.period}`),
      ` · ${a.agent} (${a.team || "no team"}) · ${grade}${a.score === null ? "" : " / " + a.score} · `,
      el("span", {class: "appeal-status"}, a.status), ` · level ${a.level}${next}`,
      a.overdue ? el("span", {class: "overdue"}, " overdue 逾期") : null),
    el("div", {class: "quote"}, a.reason),
    el("ol", {class: "audit appeal-timeline"}, a.timeline.map((t) => el("li", {class: t.late ? "overdue" : ""},
      `L${t.level} ${APPEAL_STEPS[t.step] || t.step} · ${t.by} · ${fmtTime(t.at)}`,
      t.due_at ? ` (due ${fmtDeadline(t.due_at, a.timezone)}${t.late ? ", late 逾期" : ""})` : "",
      t.outcome ? ` · ${t.outcome}${t.new_grade ? " → " + t.new_grade : ""}` : "", t.note ? ` · ${t.note}` : ""))),
    ...appealActions(a));
}

function appealStatsTable(periods) {
  const cols = ["period", "filed", "open", "upheld", "overturned", "reappealed", "overdue", "median_days_to_decision"];
  return el("table", {class: "grid", id: "appeal-stats"},
    el("thead", {}, el("tr", {}, cols.map((c) => el("th", {}, c.replace(/_/g, " "))))),
    el("tbody", {}, periods.map((p) => el("tr", {}, cols.map((c) => el("td", {}, p[c] === null ? "—" : String(p[c])))))));
}

async function showAppeals() {
  const section = $("appeals");
  section.hidden = !can("agent", "lead", "admin");
  if (section.hidden) return;
  const box = clear($("appeals-box"));
  try {
    const [list, stats] = await Promise.all([api("GET", "/appeals"),
      can("lead", "admin") ? api("GET", "/appeals/stats") : Promise.resolve(null)]);
    appealGrades = list.grades;
    if (can("agent")) box.appendChild(appealFileForm());
    if (stats && stats.periods.length) box.append(el("h3", {}, "Per period 按考核期统计"), appealStatsTable(stats.periods));
    const cards = el("div", {id: "appeals-list"}, list.appeals.map(appealCard));
    if (!list.appeals.length) cards.appendChild(el("p", {class: "muted"}, "No appeals on a grade. 暂无绩效申诉"));
    box.appendChild(cards);
  } catch (e) { box.appendChild(el("p", {class: "muted"}, e.message)); }
}

// The Disputes view belongs to review.js; the appeals load whenever it is shown.
document.addEventListener("DOMContentLoaded", () => {
  const view = $("view-disputes");
  new MutationObserver(() => { if (!view.hidden && state.user) showAppeals(); })
    .observe(view, {attributes: true, attributeFilter: ["hidden"]});
});

// kefu-qa review page: disputes, an agent's conversations, agreement, audit log.
// Loaded after review.js, whose helpers (el, api, state …) it uses. Same rule:
// user text only through textContent, never innerHTML.
"use strict";

// ------------------------------------------------------------------ disputes
function disputeCard(d) {
  const card = el("div", {class: "dispute-card" + (d.overdue ? " overdue" : "")},
    el("div", {}, el("b", {}, `申诉 dispute #${d.id}`), ` · ${d.status} · level ${d.level} · due `,
      el("span", {class: "due"}, fmtDeadline(d.due_at, d.timezone)),
      d.overdue ? el("span", {class: "overdue"}, " overdue 逾期") : null),
    el("div", {class: "quote"}, `${d.agent}: ${d.reason}`),
    d.requested_labels ? el("div", {class: "proposed"}, "proposed 建议: " +
      Object.entries(d.requested_labels).map(([k, v]) => `${k}=${v}`).join(", ")) : null,
    d.escalation_reason ? el("div", {class: "quote"}, `escalated: ${d.escalation_reason}`) : null,
    ...d.answers.map((a) => el("div", {class: "answer"}, `L${a.level} ${a.by} — ${a.outcome}: ${a.answer}`)));
  const u = state.user;
  const mayAnswer = (d.status === "open" && isReviewer()) || (d.status === "escalated" && can("lead", "admin"));
  if (mayAnswer) {
    const text = el("textarea", {rows: 2, placeholder: "Reasons for the decision (the agent reads them)", class: "answer-text"});
    const send = (outcome) => async () => {
      try {
        await api("POST", `/disputes/${d.id}/answer`, {outcome, answer: text.value, version: d.version,
          labels: outcome === "overturned" ? state.selected : null});
        toast("Answered 已答复"); await route();
      } catch (e) { toast(e.message, true); }
    };
    card.append(text, el("div", {class: "actions"},
      el("button", {type: "button", onclick: send("upheld"), class: "secondary"}, "Uphold score 维持"),
      el("button", {type: "button", onclick: send("overturned"), class: "primary", title: "uses the labels selected above"},
        "Overturn with selected labels 改判")));
  }
  if (u.role === "agent" && d.status === "answered") {
    const text = el("textarea", {rows: 2, placeholder: "Why the answer is wrong (second level, once)"});
    card.append(text, el("div", {class: "actions"},
      el("button", {type: "button", class: "secondary", onclick: async () => {
        try { await api("POST", `/disputes/${d.id}/accept`, {version: d.version}); toast("Accepted"); await route(); }
        catch (e) { toast(e.message, true); } }}, "Accept 接受"),
      el("button", {type: "button", class: "primary", onclick: async () => {
        try { await api("POST", `/disputes/${d.id}/escalate`, {reason: text.value, version: d.version}); toast("Escalated 已升级"); await route(); }
        catch (e) { toast(e.message, true); } }}, `Escalate 再申诉 (until ${fmtDeadline(d.escalate_until, d.timezone)})`)));
  }
  return card;
}

function renderItemDisputes() {
  const box = clear($("item-disputes"));
  for (const d of state.item.disputes) box.appendChild(disputeCard(d));
  if (can("agent") && !state.item.disputes.length) {
    const reason = el("textarea", {rows: 3, placeholder: "What is wrong with this score? 申诉理由", id: "dispute-reason"});
    box.append(el("h3", {}, "Dispute this score 申诉"),
      el("p", {class: "muted"}, "Optionally pick the labels you think are right above; they are sent with the dispute."),
      reason,
      el("button", {type: "button", class: "primary", id: "dispute-file", onclick: async () => {
        try {
          await api("POST", "/disputes", {conversation_id: state.item.conversation.id, reason: reason.value,
            labels: proposedLabels()});
          toast("Dispute filed 已提交"); await openItem(state.item.conversation.id);
        } catch (e) { toast(e.message, true); }
      }}, "File dispute 提交申诉"));
  }
}

async function showDisputes() {
  const f = $("dispute-filter").value;
  const qs = f === "overdue" ? "?overdue=true" : (f ? "?status=" + encodeURIComponent(f) : "");
  const data = await api("GET", "/disputes" + qs);
  show("disputes");
  const body = clear(document.querySelector("#dispute-table tbody"));
  for (const d of data.disputes) {
    body.appendChild(el("tr", {class: d.overdue ? "overdue-row" : ""},
      el("td", {}, String(d.id)),
      el("td", {}, el("a", {href: "#/item/" + encodeURIComponent(d.conversation_id)}, d.conversation_id)),
      el("td", {}, d.agent || ""), el("td", {}, d.status), el("td", {}, String(d.level)),
      el("td", {class: d.overdue ? "overdue" : ""}, fmtDeadline(d.due_at, d.timezone) + (d.overdue ? " overdue" : "")),
      el("td", {class: "reason"}, d.reason),
      el("td", {}, d.answers.map((a) => `L${a.level} ${a.outcome}`).join(", "))));
  }
  if (!data.disputes.length) body.appendChild(el("tr", {}, el("td", {colspan: 8}, "No disputes.")));
}

async function showMine() {
  const data = await api("GET", "/mine");
  show("mine");
  const body = clear(document.querySelector("#mine-table tbody"));
  for (const c of data.conversations) {
    body.appendChild(el("tr", {},
      el("td", {}, el("a", {href: "#/item/" + encodeURIComponent(c.id)}, c.id)),
      el("td", {}, fmtTime(c.started_at)),
      el("td", {}, Object.entries(c.labels).map(([k, v]) => `${k}=${v}`).join(", ")),
      el("td", {}, c.reviewed ? "yes" : ""), el("td", {}, c.disputed ? "yes" : "")));
  }
}

// ------------------------------------------------------------------ leads
function kappaText(k) {
  if (!k || !k.n) return "—";
  return (k.kappa === null ? "undefined" : k.kappa.toFixed(2)) + ` (${Math.round(k.agreement * 100)}% agree)`;
}

async function showAgreement() {
  const [a, t] = await Promise.all([api("GET", "/agreement"), api("GET", "/teams")]);
  show("agreement");
  $("agreement-summary").textContent = `${a.reviewed_items} reviewed items, ${a.double_reviewed_items} reviewed by two reviewers.`;
  const lb = clear(document.querySelector("#agreement-labels tbody"));
  for (const [head, k] of Object.entries(a.labels)) {
    lb.appendChild(el("tr", {}, el("td", {}, HEAD_NAMES[head] || head), el("td", {}, kappaText(k.reviewers)),
      el("td", {}, String(k.reviewers.n)), el("td", {}, kappaText(k.model)), el("td", {}, String(k.model.n))));
  }
  const rb = clear(document.querySelector("#agreement-reviewers tbody"));
  for (const r of a.reviewers) {
    Object.keys(a.labels).forEach((head, i) => {
      rb.appendChild(el("tr", {class: i === 0 ? "group" : ""}, el("td", {}, i === 0 ? r.name : ""),
        el("td", {}, i === 0 ? String(r.reviews) : ""), el("td", {}, head),
        el("td", {}, kappaText(r.vs_reviewers[head]) + ` n=${r.vs_reviewers[head].n}`),
        el("td", {}, kappaText(r.vs_model[head]) + ` n=${r.vs_model[head].n}`)));
    });
  }
  const tb = clear(document.querySelector("#teams-table tbody"));
  for (const team of t.teams) {
    const mine = can("admin") || state.user.team === team.team;
    tb.appendChild(el("tr", {}, el("td", {}, team.team), el("td", {}, team.restricted ? "yes" : "no"),
      el("td", {}, mine ? el("button", {type: "button", onclick: async () => {
        try { await api("POST", "/teams/" + encodeURIComponent(team.team), {restricted: !team.restricted}); await showAgreement(); }
        catch (e) { toast(e.message, true); } }}, team.restricted ? "Open to all reviewers" : "Restrict to team") : "")));
  }
}

async function showAudit() {
  const data = await api("GET", "/audit?limit=300");
  show("audit");
  const body = clear(document.querySelector("#audit-table tbody"));
  for (const e of data.entries) {
    body.appendChild(el("tr", {}, el("td", {}, fmtTime(e.at)), el("td", {}, e.actor), el("td", {}, el("code", {}, e.action)),
      el("td", {}, `${e.entity} ${e.entity_id}`), el("td", {}, labelsText(e.before) + " → " + labelsText(e.after))));
  }
}


// ------------------------------------------------------------------ users (admins)
async function showUsers() {
  const data = await api("GET", "/users");
  show("users");
  const body = clear(document.querySelector("#users-table tbody"));
  for (const u of data.users) {
    const self = u.name === state.user.name;
    body.appendChild(el("tr", {class: u.active ? "" : "inactive", dataset: {name: u.name}},
      el("td", {}, u.name), el("td", {}, u.role), el("td", {}, u.team || ""), el("td", {}, u.agent_id || ""),
      el("td", {}, u.active ? "yes" : "no"),
      el("td", {}, self ? "" : el("button", {type: "button", onclick: async () => {
        try { await api("POST", "/users/" + encodeURIComponent(u.name) + "/active", {active: !u.active}); await showUsers(); }
        catch (e) { toast(e.message, true); } }}, u.active ? "Disable 停用" : "Enable 启用"))));
  }
  const form = $("user-form");
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = {name: f.get("name").trim(), role: f.get("role"), password: f.get("password"),
                  team: f.get("team").trim() || null, agent_id: f.get("agent_id").trim() || null};
    $("user-error").textContent = "";
    try {
      await api("POST", "/users", body);
      form.reset();
      toast(`Added ${body.name}`);
      await showUsers();
    } catch (e) { $("user-error").textContent = e.message; }
  };
}

// The right panel: api-attendee's copy of the conferences (ConferenceVO), each row's version and
// lag, and registration against the copy with every answer shown.

import { el, problemText } from "./api.js";

export function formatLag(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  if (Math.abs(seconds) < 1) return `${(seconds * 1000).toFixed(1)} ms`;
  return `${seconds.toFixed(2)} s`;
}

export class CopyPanel {
  constructor(api) {
    this.api = api;
    this.versions = new Map(); // conference id -> version last shown, to light up changes
    this.rendered = false;
    this.form = document.getElementById("register-form");
    this.log = document.getElementById("register-log");
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.register(); });
  }

  async refresh() {
    const res = await this.api.get("/api/conference-vos/?limit=50");
    if (res.ok) this.render(res.body.conference_vos);
  }

  render(rows) {
    const tbody = document.querySelector("#copy-table tbody");
    const seen = new Map();
    const trs = rows.map((r) => {
      const state = r.deleted ? "deleted" : r.attendees >= r.max_attendees ? "full" : "live";
      const tr = el("tr", { "data-id": r.id, "data-version": r.version, "data-deleted": r.deleted, class: state },
        el("td", { class: "num" }, r.id), el("td", {}, r.name), el("td", { class: "num version" }, r.version),
        el("td", { class: "num" }, `${r.attendees} / ${r.max_attendees}`),
        el("td", { class: "state" }, r.deleted ? "tombstone" : state),
        el("td", { class: "num lag", title: `occurred ${r.occurred_at}, applied ${r.applied_at}` }, formatLag(r.lag_seconds)));
      // A row is new or has a new version: light it up (only after the first render, so that
      // opening the page does not flash every row).
      if (this.rendered && this.versions.get(r.id) !== r.version) tr.classList.add("changed");
      seen.set(r.id, r.version);
      return tr;
    });
    this.versions = seen;
    this.rendered = true;
    tbody.replaceChildren(...trs);
    this.renderChoices(rows.filter((r) => !r.deleted));
  }

  renderChoices(live) {
    const select = this.form.elements.conference;
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "" }, "conference…"),
      ...live.map((r) => el("option", { value: r.id }, `${r.id}: ${r.name}`)));
    // A conference that was chosen and has since been deleted stays choosable, so that
    // registering for it shows the refusal.
    if (chosen && !live.some((r) => String(r.id) === chosen)) select.append(el("option", { value: chosen }, `${chosen} (gone from the copy)`));
    select.value = chosen;
  }

  async register() {
    const f = this.form.elements;
    const body = { conference: `/api/conferences/${f.conference.value}/`, email: f.email.value, name: f.name.value };
    const res = await this.api.post("/api/attendees/", body);
    const text = res.ok ? `201 registered ${res.body.name} <${res.body.email}> for “${res.body.conference.name}”` : problemText(res);
    const item = el("li", { "data-ok": res.ok, "data-status": res.status }, el("span", { class: "detail" }, text));
    for (const fe of (res.problem && res.problem.errors) || []) item.append(el("div", {}, `${fe.field}: ${fe.message}`));
    this.log.prepend(item);
    if (res.ok) f.email.value = "";
    await this.refresh();
  }
}

// The left panel: api-conference's locations and conferences, with create, edit and delete.

import { el, showAnswer } from "./api.js";

export class ConferencePanel {
  constructor(api, onChange) {
    this.api = api;
    this.onChange = onChange; // called after every write that succeeded
    this.locForm = document.getElementById("location-form");
    this.confForm = document.getElementById("conference-form");
    this.locAnswer = document.getElementById("location-answer");
    this.confAnswer = document.getElementById("conference-answer");
    this.locForm.addEventListener("submit", (e) => { e.preventDefault(); this.saveLocation(); });
    this.confForm.addEventListener("submit", (e) => { e.preventDefault(); this.saveConference(); });
    for (const form of [this.locForm, this.confForm]) {
      form.querySelector(".cancel").addEventListener("click", () => this.stopEditing(form));
    }
  }

  async loadStates() {
    const res = await this.api.get("/api/states/");
    if (!res.ok) return false;
    const select = this.locForm.elements.state;
    for (const s of res.body.states) select.append(el("option", { value: s.abbreviation }, `${s.abbreviation} — ${s.name}`));
    return true;
  }

  async refresh() {
    const [locs, confs] = await Promise.all([this.api.get("/api/locations/"), this.api.get("/api/conferences/")]);
    if (locs.ok) this.renderLocations(locs.body.locations);
    if (confs.ok) this.renderConferences(confs.body.conferences);
  }

  renderLocations(locations) {
    const rows = locations.map((l) => el("tr", { "data-id": l.id },
      el("td", { class: "num" }, l.id), el("td", {}, l.name), el("td", {}, l.city), el("td", {}, l.state),
      el("td", {},
        el("button", { type: "button", class: "edit", onclick: () => this.editLocation(l.id) }, "Edit"), " ",
        el("button", { type: "button", class: "delete", onclick: () => this.remove("location", l.id) }, "Delete"))));
    document.querySelector("#location-table tbody").replaceChildren(...rows);
    const select = this.confForm.elements.location;
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "" }, "location…"),
      ...locations.map((l) => el("option", { value: l.id }, `${l.name}, ${l.city}`)));
    select.value = chosen;
  }

  renderConferences(conferences) {
    const rows = conferences.map((c) => el("tr", { "data-id": c.id, "data-version": c.version },
      el("td", { class: "num" }, c.id), el("td", {}, c.name),
      el("td", {}, `${c.starts.slice(0, 10)} – ${c.ends.slice(0, 10)}`), el("td", { class: "num" }, c.max_attendees),
      el("td", { class: "num" }, c.version), el("td", {}, c.location ? c.location.name : ""),
      el("td", {},
        el("button", { type: "button", class: "edit", onclick: () => this.editConference(c.id) }, "Edit"), " ",
        el("button", { type: "button", class: "delete", onclick: () => this.remove("conference", c.id) }, "Delete"))));
    document.querySelector("#conference-table tbody").replaceChildren(...rows);
  }

  async saveLocation() {
    const f = this.locForm.elements;
    const body = { name: f.name.value, city: f.city.value, room_count: Number(f.room_count.value), state: f.state.value };
    await this.save(this.locForm, this.locAnswer, "/api/locations/", body, (l) => `location ${l.id} “${l.name}”`);
  }

  async saveConference() {
    const f = this.confForm.elements;
    const body = {
      name: f.name.value, starts: f.starts.value, ends: f.ends.value,
      max_presentations: Number(f.max_presentations.value), max_attendees: Number(f.max_attendees.value),
      location: Number(f.location.value),
    };
    await this.save(this.confForm, this.confAnswer, "/api/conferences/", body, (c) => `conference ${c.id} “${c.name}”, version ${c.version}`);
  }

  // save creates (POST) or, while a row is being edited, updates (PUT) what the form holds.
  async save(form, answer, path, body, describe) {
    const id = form.dataset.editing;
    const res = id ? await this.api.put(`${path}${id}/`, body) : await this.api.post(path, body);
    showAnswer(answer, res, res.ok ? `${id ? "saved" : "created"} ${describe(res.body)}` : "");
    if (!res.ok) return;
    this.stopEditing(form);
    form.reset();
    await this.refresh();
    this.onChange();
  }

  async editLocation(id) {
    const res = await this.api.get(`/api/locations/${id}/`);
    if (!res.ok) return showAnswer(this.locAnswer, res, "");
    const f = this.locForm.elements, l = res.body;
    f.name.value = l.name; f.city.value = l.city; f.room_count.value = l.room_count; f.state.value = l.state;
    this.startEditing(this.locForm, id, "Save location");
  }

  async editConference(id) {
    const res = await this.api.get(`/api/conferences/${id}/`);
    if (!res.ok) return showAnswer(this.confAnswer, res, "");
    const f = this.confForm.elements, c = res.body.conference;
    f.name.value = c.name; f.starts.value = c.starts.slice(0, 10); f.ends.value = c.ends.slice(0, 10);
    f.max_presentations.value = c.max_presentations; f.max_attendees.value = c.max_attendees;
    f.location.value = String(c.location.href.match(/(\d+)\/?$/)[1]);
    this.startEditing(this.confForm, id, "Save conference");
  }

  startEditing(form, id, label) {
    form.dataset.editing = id;
    form.querySelector('button[type="submit"]').textContent = `${label} ${id}`;
    form.querySelector(".cancel").hidden = false;
  }

  stopEditing(form) {
    delete form.dataset.editing;
    form.querySelector('button[type="submit"]').textContent = form === this.locForm ? "Add location" : "Add conference";
    form.querySelector(".cancel").hidden = true;
  }

  async remove(kind, id) {
    const answer = kind === "location" ? this.locAnswer : this.confAnswer;
    const res = await this.api.del(`/api/${kind}s/${id}/`);
    showAnswer(answer, res, `deleted ${kind} ${id}`);
    if (!res.ok) return;
    await this.refresh();
    this.onChange();
  }
}

// The services, as the page reaches them, and what it knows of whether they answer.

const reach = new Map(); // service -> "up" | "down"

// markReach shows on the service's panel whether its last request got an answer.
export function markReach(service, state) {
  if (reach.get(service) === state) return;
  reach.set(service, state);
  const badge = document.getElementById(`reach-${service}`);
  badge.dataset.state = state;
  badge.textContent = state === "up" ? "reachable" : "not reachable";
  document.querySelector(`.panel[data-service="${service}"]`).classList.toggle("unreachable", state === "down");
}

// Client calls one service. Every answer resolves to {ok, status, body, problem}: a network
// failure is status 0 with a problem saying the service is not reachable, so callers show one
// kind of thing.
export class Client {
  constructor(service, base) {
    this.service = service;
    this.base = base;
  }

  async request(method, path, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(this.base + path, init);
    } catch (err) {
      markReach(this.service, "down");
      return { ok: false, status: 0, body: null, problem: { title: "not reachable", detail: `${this.base} does not answer (${err.message})` } };
    }
    markReach(this.service, "up");
    const type = resp.headers.get("Content-Type") || "";
    let data = null;
    if (type.includes("json")) {
      try {
        data = await resp.json();
      } catch {
        data = null;
      }
    }
    if (resp.ok) return { ok: true, status: resp.status, body: data, problem: null };
    const problem = type.includes("problem+json") && data ? data : { title: resp.statusText, detail: `${method} ${path} answered ${resp.status}` };
    return { ok: false, status: resp.status, body: data, problem };
  }

  get(path) { return this.request("GET", path); }
  post(path, body) { return this.request("POST", path, body); }
  put(path, body) { return this.request("PUT", path, body); }
  del(path) { return this.request("DELETE", path); }
}

// el makes an element with text and attributes; children may be elements or strings.
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.dataset[k.slice(5).replace(/-(.)/g, (_, c) => c.toUpperCase())] = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

// showAnswer writes an API's answer under a form: what was done, or the problem's title,
// detail and each invalid field, so that no refusal goes unseen.
export function showAnswer(box, res, success) {
  box.replaceChildren();
  box.dataset.ok = String(res.ok);
  box.dataset.status = String(res.status);
  if (res.ok) {
    box.append(success);
    return;
  }
  box.append(problemText(res));
  const fields = res.problem.errors || [];
  if (fields.length) box.append(el("ul", {}, ...fields.map((f) => el("li", {}, `${f.field}: ${f.message}`))));
}

export function problemText(res) {
  const p = res.problem;
  const status = res.status ? `${res.status} ` : "";
  return `${status}${p.title || "error"}${p.detail ? `: ${p.detail}` : ""}`;
}

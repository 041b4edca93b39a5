// The sync's live figures, from the syncer's and api-attendee's GET /status, and the chart of
// propagation lag. Rates and recent quantiles come from the difference between two answers.

import { formatLag } from "./copy.js";

// windowMs is how far back "recent" reaches for rates and lag quantiles.
const windowMs = 10_000;
// chartSpan is how much history the chart keeps.
const chartSpanMs = 5 * 60_000;

// quantile estimates the q-quantile of the observations a cumulative histogram holds, by
// linear interpolation inside the bucket where it falls (as Prometheus' histogram_quantile).
// buckets are [{le, count}] without +Inf; total is the histogram's count.
export function quantile(q, buckets, total) {
  if (!total) return null;
  const rank = q * total;
  let lower = 0, below = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      const inBucket = b.count - below;
      return inBucket > 0 ? lower + (b.le - lower) * ((rank - below) / inBucket) : b.le;
    }
    lower = b.le;
    below = b.count;
  }
  return lower; // in the +Inf bucket: at least the highest bound
}

// delta is the histogram of what was observed between two readings of one.
export function delta(now, then) {
  if (!then) return now;
  const before = new Map(then.buckets.map((b) => [b.le, b.count]));
  return { count: now.count - then.count, sum: now.sum - then.sum, buckets: now.buckets.map((b) => ({ le: b.le, count: b.count - (before.get(b.le) || 0) })) };
}

const value = (status, name) => (status && status.metrics[name] && status.metrics[name].value !== undefined ? status.metrics[name].value : null);

// The figures, in the order shown: label, which mode they apply to, and how to read them.
const figureDefs = [
  ["changes_per_s", "changes/s applied", null],
  ["lag_p50", "lag p50 (10 s)", null],
  ["lag_p99", "lag p99 (10 s)", null],
  ["stream_length", "stream length", "push"],
  ["pending", "pending entries", "push"],
  ["group_lag", "undelivered entries", "push"],
  ["dead_letters", "dead letters", "push"],
  ["outbox_backlog", "outbox backlog", "push"],
  ["published", "events published", "push"],
  ["polls", "polls", "pull"],
  ["not_modified", "polls with nothing new (304s)", "pull"],
  ["handed_over", "changes handed over", "pull"],
];

export class Figures {
  constructor(syncer, attendee) {
    this.syncer = syncer;
    this.attendee = attendee;
    this.history = []; // [{t, lag}] of api-attendee's readings, for rates and recent quantiles
    this.points = [[], [], []]; // the chart's x (s), p50 (ms), p99 (ms)
    this.chart = null;
    const dl = document.getElementById("figures");
    for (const [id, label] of figureDefs) {
      dl.append(Object.assign(document.createElement("div"), { id: `figure-${id}` }));
      const box = dl.lastElementChild;
      box.append(Object.assign(document.createElement("dt"), { textContent: label }));
      box.append(Object.assign(document.createElement("dd"), { textContent: "—" }));
    }
  }

  async refresh() {
    const [s, a] = await Promise.all([this.syncer.get("/status"), this.attendee.get("/status")]);
    const syncer = s.ok ? s.body : null, attendee = a.ok ? a.body : null;
    const mode = (syncer && syncer.mode) || (attendee && attendee.mode) || "";
    showMode(mode, syncer, attendee);
    const recent = attendee ? this.recent(attendee) : {};
    const show = {
      ...recent,
      stream_length: value(syncer, "relay_stream_length"), pending: value(syncer, "relay_stream_pending"),
      group_lag: value(syncer, "relay_stream_group_lag"), dead_letters: value(syncer, "relay_dead_letters"),
      outbox_backlog: value(syncer, "relay_outbox_backlog"), published: value(syncer, "relay_events_published_total"),
      polls: value(syncer, "poller_source_requests_total"), not_modified: value(syncer, "poller_not_modified_total"),
      handed_over: value(syncer, "poller_changes_handed_over_total"),
    };
    for (const [id, , applies] of figureDefs) {
      const box = document.getElementById(`figure-${id}`);
      box.dataset.applies = String(!applies || !mode || applies === mode);
      const v = show[id];
      box.querySelector("dd").textContent = v === null || v === undefined ? "—" : id.startsWith("lag") ? formatLag(v) : id === "changes_per_s" ? v.toFixed(1) : String(v);
      box.dataset.value = v === null || v === undefined ? "" : String(v);
    }
    this.plot(recent);
  }

  // recent computes, from api-attendee's lag histogram of the mode, the changes per second and
  // lag quantiles over the last windowMs.
  recent(attendee) {
    const name = attendee.mode === "pull" ? "attendee_internal_lag_seconds" : "attendee_consumer_lag_seconds";
    const lag = attendee.metrics[name];
    if (!lag) return { changes_per_s: null, lag_p50: null, lag_p99: null };
    const t = Date.parse(attendee.time);
    this.history.push({ t, lag });
    while (this.history.length > 1 && this.history[1].t <= t - windowMs) this.history.shift();
    const then = this.history[0];
    if (then.t === t) return { changes_per_s: null, lag_p50: null, lag_p99: null };
    const d = delta(lag, then.lag);
    return {
      changes_per_s: d.count / ((t - then.t) / 1000),
      lag_p50: quantile(0.5, d.buckets, d.count), lag_p99: quantile(0.99, d.buckets, d.count),
    };
  }

  plot(recent) {
    if (typeof uPlot === "undefined") return;
    const now = Date.now();
    const ms = (v) => (v === null || v === undefined ? null : v * 1000);
    this.points[0].push(now / 1000);
    this.points[1].push(ms(recent.lag_p50));
    this.points[2].push(ms(recent.lag_p99));
    while (this.points[0].length && this.points[0][0] < (now - chartSpanMs) / 1000) for (const s of this.points) s.shift();
    if (!this.chart) this.chart = newChart(document.getElementById("lag-chart"), this.points);
    else this.chart.setData(this.points);
  }
}

function showMode(mode, syncer, attendee) {
  const m = document.getElementById("mode");
  m.textContent = mode || "unknown";
  m.dataset.mode = mode;
  const note = document.getElementById("mode-note");
  note.textContent = syncer && attendee && syncer.mode !== attendee.mode ? `(the syncer is in ${syncer.mode} mode, api-attendee in ${attendee.mode})` : "";
}

function newChart(target, data) {
  const width = Math.max(300, target.clientWidth);
  /* global uPlot */
  return new uPlot({
    title: "propagation lag at api-attendee (ms), over the last 10 s, for the last 5 minutes",
    width, height: 220,
    scales: { x: { time: true } },
    series: [
      {},
      { label: "p50", stroke: "#0b6bcb", width: 2, spanGaps: false, value: (u, v) => (v === null ? "—" : `${v.toFixed(1)} ms`) },
      { label: "p99", stroke: "#c0262d", width: 2, spanGaps: false, value: (u, v) => (v === null ? "—" : `${v.toFixed(1)} ms`) },
    ],
    axes: [{}, { label: "ms" }],
  }, data, target);
}

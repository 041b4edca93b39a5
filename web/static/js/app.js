// The page's start: where the services are (from /config.json), the three panels, and the
// loops that keep them current. Each loop waits for its last round before the next, so a slow
// service never piles up requests.

import { Client } from "./api.js";
import { ConferencePanel } from "./conference.js";
import { CopyPanel } from "./copy.js";
import { Figures } from "./figures.js";

// every runs fn now and then intervalMs after each round ends.
function every(intervalMs, fn) {
  const round = async () => {
    try {
      await fn();
    } finally {
      setTimeout(round, intervalMs);
    }
  };
  round();
}

async function start() {
  const cfg = await (await fetch("config.json")).json();
  const conference = new Client("conference", cfg.conference_url);
  const attendee = new Client("attendee", cfg.attendee_url);
  const syncer = new Client("syncer", cfg.syncer_url);
  document.getElementById("url-conference").textContent = cfg.conference_url;
  document.getElementById("url-attendee").textContent = cfg.attendee_url;
  document.getElementById("url-syncer").textContent = cfg.syncer_url;

  const copy = new CopyPanel(attendee);
  const left = new ConferencePanel(conference, () => copy.refresh());
  const figures = new Figures(syncer, attendee);
  every(5000, async () => {
    // The states never change: once loaded, the round only refreshes the lists.
    if (!left.statesLoaded) left.statesLoaded = await left.loadStates();
    await left.refresh();
  });
  every(1000, () => copy.refresh());
  every(1000, () => figures.refresh());
  document.body.dataset.ready = "true";
}

start();

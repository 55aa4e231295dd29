// linstor-migrator pages: progressive enhancement only. Everything works without this script
// except the live log; with it, destructive actions get a confirmation dialog, and the run page
// follows the run over Server-Sent Events (log lines, step states, downtime clock). When the
// server refuses the stream because the session has ended, the page says so, stops its clocks
// and offers to sign in again instead of reconnecting for ever.
"use strict";

(function () {
  // --- confirmation dialogs for forms with data-confirm -------------------------------------
  const dialog = document.getElementById("confirm-dialog");
  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    const confirmed = form.querySelector('input[name="confirmed"]');
    if (!confirmed || confirmed.value === "yes") return;
    ev.preventDefault();
    if (!dialog || typeof dialog.showModal !== "function") {
      if (window.confirm(form.dataset.confirm)) { confirmed.value = "yes"; form.submit(); }
      return;
    }
    dialog.querySelector("#confirm-title").textContent = form.dataset.confirmTitle || "Please confirm";
    dialog.querySelector("#confirm-text").textContent = form.dataset.confirm;
    const ok = dialog.querySelector("#confirm-ok");
    ok.className = "btn btn-" + (form.dataset.confirmStyle === "primary" ? "primary" : "danger");
    dialog.returnValue = "";
    dialog.addEventListener("close", function onClose() {
      dialog.removeEventListener("close", onClose);
      if (dialog.returnValue === "ok") { confirmed.value = "yes"; form.submit(); }
    });
    dialog.showModal();
    dialog.querySelector('button[value="cancel"]').focus();
  });

  // --- copy buttons ---------------------------------------------------------------------------
  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest && ev.target.closest("[data-copy]");
    if (!btn) return;
    const src = document.getElementById(btn.dataset.copy);
    if (!src || !navigator.clipboard) return;
    navigator.clipboard.writeText(src.textContent.trim()).then(() => {
      const old = btn.textContent;
      btn.textContent = "Copied";
      setTimeout(() => { btn.textContent = old; }, 1500);
    });
  });

  const run = document.getElementById("run");
  if (run) followRun(run);
})();

function pad(n) { return String(n).padStart(2, "0"); }

function clockText(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return pad(Math.floor(s / 3600)) + ":" + pad(Math.floor((s % 3600) / 60)) + ":" + pad(s % 60);
}

function durationText(ms) {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + pad(Math.floor(s % 60)) + " s";
  return Math.floor(s / 3600) + " h " + pad(Math.floor((s % 3600) / 60)) + " min";
}

const STEP_ICONS = { pending: "○", running: "●", succeeded: "✓", failed: "✗", skipped: "–", rolled_back: "↺" };
const STATE_LABELS = { queued: "queued", running: "running", waiting: "waiting for approval", succeeded: "succeeded",
  failed: "failed", cancelled: "cancelled", rolled_back: "rolled back", rollback_failed: "rollback failed" };

function followRun(run) {
  const id = run.dataset.runId;
  const pageState = run.dataset.state;
  const log = document.getElementById("log");
  const status = document.getElementById("log-status");
  const follow = document.getElementById("follow");
  const downtime = document.getElementById("downtime");
  const clock = document.getElementById("downtime-clock");
  // the page holds the log's tail: line numbers go on from its first line, and at most `limit`
  // lines stay in the page (the oldest go as new ones arrive; the download has them all)
  let shown = log.querySelectorAll(".ll").length;
  let lineNo = Number(log.dataset.firstLine || 1) - 1 + shown;
  const limit = Number(log.dataset.limit || 5000);
  const hiddenNote = document.getElementById("log-hidden");
  const hiddenCount = document.getElementById("log-hidden-count");
  let stick = true;
  let userScroll = false;

  // auto-scroll while the reader is at the bottom; stop when *they* scroll up (scroll events
  // from new lines or from opening and closing groups do not count)
  const atBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const toBottom = () => { log.scrollTop = log.scrollHeight; };
  ["wheel", "touchstart", "pointerdown", "keydown"].forEach((t) =>
    log.addEventListener(t, () => { userScroll = true; }, { passive: true }));
  log.addEventListener("scroll", () => {
    if (atBottom()) {
      stick = true;
    } else if (userScroll) {
      stick = false;
    } else if (stick) {
      toBottom();
    }
    userScroll = false;
    follow.hidden = stick;
  });
  follow.addEventListener("click", () => { stick = true; follow.hidden = true; toBottom(); log.focus(); });
  if (!location.hash) toBottom();

  // downtime clock and the running step's duration
  function tick() {
    if (downtime && !downtime.hidden && downtime.dataset.start && !downtime.dataset.end) {
      clock.textContent = clockText(Date.now() - Date.parse(downtime.dataset.start));
    }
    // a manual rollback's own downtime
    const rb = document.getElementById("rollback-phase");
    const rbClock = document.getElementById("rollback-clock");
    if (rb && rbClock && rb.dataset.start && !rb.dataset.end) {
      rbClock.textContent = clockText(Date.now() - Date.parse(rb.dataset.start));
    }
    document.querySelectorAll(".step-running[data-started]").forEach((li) => {
      if (li.dataset.started) li.querySelector(".step-dur").textContent = durationText(Date.now() - Date.parse(li.dataset.started));
    });
  }
  const ticking = setInterval(tick, 1000);
  tick();

  if (run.dataset.final === "true") return;

  function group(step, title) {
    const groups = log.querySelectorAll(".log-group");
    const last = groups[groups.length - 1];
    if (last && last.dataset.step === step) return last;
    const empty = document.getElementById("log-empty");
    if (empty) empty.remove();
    const d = document.createElement("details");
    d.className = "log-group";
    d.dataset.step = step;
    d.open = true;
    const s = document.createElement("summary");
    s.textContent = title + " ";
    const count = document.createElement("span");
    count.className = "log-count";
    count.textContent = "0";
    s.appendChild(count);
    const ol = document.createElement("ol");
    ol.className = "log-lines";
    d.append(s, ol);
    log.appendChild(d);
    return d;
  }

  function stepTitle(step) {
    const li = document.querySelector('.step[data-step="' + step + '"] .step-title');
    return li ? li.firstChild.textContent.trim() : step ? step : "Run";
  }

  function addLine(ev) {
    const step = ev.step || "run";
    const g = group(step, ev.step ? stepTitle(ev.step) : "Run");
    lineNo += 1;
    const li = document.createElement("li");
    li.className = "ll lvl-" + ev.level;
    li.id = "L" + lineNo;
    const a = document.createElement("a");
    a.className = "ln"; a.href = "#L" + lineNo; a.textContent = String(lineNo);
    a.setAttribute("aria-label", "line " + lineNo);
    const t = document.createElement("time");
    t.dateTime = ev.at;
    t.textContent = new Date(ev.at).toISOString().substring(11, 23);
    const tag = document.createElement("span");
    tag.className = "lvl-tag lvl-" + ev.level;
    tag.textContent = ev.level === "stdout" ? "out" : ev.level === "stderr" ? "err" : ev.level;
    const msg = document.createElement("span");
    msg.className = "msg";
    msg.textContent = ev.message;
    li.append(a, t, tag, msg);
    g.querySelector(".log-lines").appendChild(li);
    const count = g.querySelector(".log-count");
    count.textContent = String(Number(count.textContent) + 1);
    dropOldest();
    if (stick) toBottom();
  }

  function dropOldest() {
    shown += 1;
    while (shown > limit) {
      const first = log.querySelector(".log-group");
      const li = first.querySelector(".ll");
      li.remove();
      shown -= 1;
      const count = first.querySelector(".log-count");
      count.textContent = String(Number(count.textContent) - 1);
      if (!first.querySelector(".ll")) first.remove();
      hiddenCount.textContent = String(Number(hiddenCount.textContent) + 1);
      hiddenNote.hidden = false;
    }
  }

  function setStep(ev) {
    const li = document.querySelector('.step[data-step="' + ev.step + '"]');
    if (!li) return;
    const state = ev.level;
    li.className = li.className.replace(/\bstep-(pending|running|succeeded|failed|skipped|rolled_back)\b/, "step-" + state);
    li.querySelector(".step-icon").textContent = STEP_ICONS[state] || "○";
    li.querySelector(".step-state-text").textContent = ": " + state;
    document.querySelectorAll(".step-current").forEach((c) => { c.classList.remove("step-current"); c.removeAttribute("aria-current"); });
    if (state === "running") {
      li.dataset.started = ev.at;
      li.classList.add("step-current");
      li.setAttribute("aria-current", "step");
    } else if (li.dataset.started && state !== "pending") {
      li.querySelector(".step-dur").textContent = durationText(Date.parse(ev.at) - Date.parse(li.dataset.started));
    }
    // the controller is down from stopping it until it is started again
    if (ev.step === "stop_controller" && state === "running" && downtime && !downtime.dataset.start) {
      downtime.dataset.start = ev.at;
      downtime.hidden = false;
    }
    if (ev.step === "start_controller" && state === "succeeded" && downtime && downtime.dataset.start) {
      downtime.dataset.end = ev.at;
      downtime.classList.remove("downtime-active");
      document.getElementById("downtime-label").textContent = "Controller downtime";
    }
  }

  function setRun(ev) {
    const badge = document.getElementById("run-state");
    badge.className = "badge badge-lg state-" + ev.level;
    badge.textContent = STATE_LABELS[ev.level] || ev.level;
    // a new state can change the actions and results: show the page as the server renders it
    const same = ev.level === pageState || (pageState === "queued" && ev.level === "running");
    if (!same) reloadSoon();
  }

  let reloading = false;
  function reloadSoon() {
    if (reloading) return;
    reloading = true;
    setTimeout(() => location.reload(), 800);
  }

  if (!window.EventSource) return;
  const eventsUrl = "/api/v1/runs/" + encodeURIComponent(id) + "/events?after=";
  let lastId = run.dataset.after;
  let retryDelay = 1000;
  const parse = (m) => { if (m.lastEventId) lastId = m.lastEventId; try { return JSON.parse(m.data); } catch (e) { return null; } };

  function open() {
    const es = new EventSource(eventsUrl + encodeURIComponent(lastId));
    es.onopen = () => { status.textContent = "live"; retryDelay = 1000; };
    es.onerror = () => {
      // CONNECTING: the browser reconnects by itself (the server restarts, the network blinks)
      if (es.readyState !== EventSource.CLOSED) { status.textContent = "reconnecting…"; return; }
      // CLOSED: the server answered with something other than the stream; ask why
      es.close();
      whyRefused();
    };
    es.addEventListener("log", (m) => { const ev = parse(m); if (ev) addLine(ev); });
    es.addEventListener("step", (m) => { const ev = parse(m); if (ev) setStep(ev); });
    es.addEventListener("run", (m) => { const ev = parse(m); if (ev) setRun(ev); });
    es.addEventListener("end", () => {
      es.close();
      status.textContent = "complete";
      reloadSoon();
    });
  }

  function whyRefused() {
    fetch("/api/v1/runs/" + encodeURIComponent(id), { credentials: "same-origin", cache: "no-store" })
      .then((r) => { if (r.status === 401 || r.status === 403) { refused(r.status); } else { retryLater(); } })
      .catch(retryLater);
  }

  function retryLater() {
    status.textContent = "reconnecting…";
    setTimeout(open, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
  }

  // the session ended (expired, signed out elsewhere, the token changed): nothing on this page
  // updates any more, so say so, stop the clocks and offer to sign in again
  function refused(code) {
    clearInterval(ticking);
    status.textContent = "not updating";
    const badge = document.getElementById("run-state");
    if (badge) badge.title = "The state when the page stopped updating";
    if (document.getElementById("stream-refused")) return;
    const note = document.createElement("div");
    note.id = "stream-refused";
    note.className = "flash flash-warn";
    note.setAttribute("role", "alert");
    const why = code === 403
      ? "The server no longer lets this session follow the run."
      : "Your session has ended (it expired, you signed out, or the service's token changed).";
    note.append(why + " This page has stopped updating; the run itself goes on. ");
    const link = document.createElement("a");
    link.id = "sign-in-again";
    link.href = "/login?next=" + encodeURIComponent(location.pathname);
    link.textContent = "Sign in again";
    note.append(link);
    const head = run.querySelector(".run-head");
    if (head) head.after(note); else run.prepend(note);
  }

  open();
}

/* Stepwise labeling page: math rendering, keyboard shortcuts, active-time clock.
 *
 * The server is the source of truth: a shortcut only clicks the real button, htmx POSTs it,
 * and the page shows a rating as chosen (aria-pressed) only once the server's response says
 * so (the whole task, or just the changed rows swapped out of band: see `seen` below).
 * Shortcuts pressed while a save is in flight are queued and replayed in order, so typing
 * "3 3 1" rates three consecutive steps. A save that fails (network error, 5xx) shows a visible
 * error with a retry, drops the queued keys, and leaves the page showing what was stored.
 */
(function () {
  "use strict";

  var IDLE_MS = 60 * 1000; // no input for this long pauses the clock
  var TICK_MS = 1000;
  var HEARTBEAT_MS = 60 * 1000;
  var KEYS = {
    "1": ["rate", "-1"], "-": ["rate", "-1"], "\u2212": ["rate", "-1"],
    "2": ["rate", "0"], "0": ["rate", "0"],
    "3": ["rate", "1"], "+": ["rate", "1"], "=": ["rate", "1"],
    "f": ["flag"], "u": ["undo"], "n": ["next"], "r": ["retry"],
    "g": ["confirm", "give_up"], "b": ["confirm", "bad_problem"]
  };
  var CONFIRM_MS = 4000; // a second press of g or b within this confirms

  function $(selector, root) { return (root || document).querySelector(selector); }
  function task() { return document.getElementById("task"); }
  function editable() { var t = task(); return !!t && t.dataset.editable === "true"; }
  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }

  /* --- math ------------------------------------------------------------------------- */
  // Model-written TeX is hostile input: KaTeX's maxExpand bounds macro expansion (a
  // self-doubling \def) and maxSize caps \rule/\kern sizes (in em). A formula KaTeX refuses
  // (its ParseError, rendered as .katex-error when throwOnError is false) or that crashes it
  // becomes a readable note with the source kept; the rest of the page renders on.
  var KATEX_LIMITS = { throwOnError: false, trust: false, strict: "ignore", maxExpand: 500, maxSize: 20 };
  var KATEX_OPTIONS = Object.assign({
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "\\[", right: "\\]", display: true },
      { left: "\\(", right: "\\)", display: false },
      { left: "$", right: "$", display: false }
    ]
  }, KATEX_LIMITS);
  var MATH_ERROR = "could not render this formula";

  function mathError(source, reason) {
    var note = document.createElement("span");
    note.className = "math-error";
    note.setAttribute("role", "note");
    note.title = reason;
    var what = document.createElement("strong");
    what.textContent = MATH_ERROR;
    var code = document.createElement("code");
    code.textContent = source;
    note.appendChild(what);
    note.appendChild(document.createTextNode(": "));
    note.appendChild(code);
    return note;
  }

  function explainErrors(root) {
    Array.prototype.forEach.call(root.querySelectorAll(".katex-error"), function (el) {
      el.replaceWith(mathError(el.textContent, el.title || "KaTeX parse error"));
    });
  }

  function renderBlock(el, source, render) {
    try {
      render();
    } catch (e) { // not a ParseError (those come back rendered): a crash inside KaTeX
      el.textContent = "";
      el.appendChild(mathError(source, String((e && e.message) || e)));
    }
    explainErrors(el);
  }

  function renderMath(root) {
    if (!root || !root.querySelectorAll) return;
    if (window.renderMathInElement) {
      var blocks = root.matches && root.matches(".math") ? [root] : root.querySelectorAll(".math");
      Array.prototype.forEach.call(blocks, function (el) {
        renderBlock(el, el.textContent, function () { window.renderMathInElement(el, KATEX_OPTIONS); });
      });
    }
    if (window.katex) {
      Array.prototype.forEach.call(root.querySelectorAll("[data-tex]"), function (el) {
        var tex = el.getAttribute("data-tex");
        renderBlock(el, tex, function () {
          window.katex.render(tex, el, Object.assign({ displayMode: false }, KATEX_LIMITS));
        });
      });
    }
  }

  /* --- active-time clock -------------------------------------------------------------- */
  var clock = {
    pending: 0, // measured, not yet sent
    total: 0, // measured since the page loaded (for the page's own checks and tests)
    lastInput: Date.now(),
    lastTick: Date.now(),
    tick: function () {
      var now = Date.now();
      // A long gap between ticks means the machine slept: count at most two ticks of it.
      var dt = Math.min(now - this.lastTick, 2 * TICK_MS);
      this.lastTick = now;
      if (!document.hidden && now - this.lastInput < IDLE_MS && editable()) {
        this.pending += dt;
        this.total += dt;
      }
    },
    take: function () { this.tick(); var ms = Math.round(this.pending); this.pending = 0; return ms; },
    giveBack: function (ms) { this.pending += ms || 0; }
  };
  ["keydown", "mousedown", "mousemove", "wheel", "touchstart", "scroll"].forEach(function (name) {
    window.addEventListener(name, function () { clock.lastInput = Date.now(); }, { passive: true, capture: true });
  });
  setInterval(function () { clock.tick(); }, TICK_MS);
  window.StepwiseLabel = { activeMs: function () { clock.tick(); return clock.total; } };

  function heartbeat() {
    var t = task();
    if (!t || !editable() || busy || clock.pending < 1000) return;
    var ms = clock.take();
    fetch(t.dataset.heartbeatUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Content-Type": "application/x-www-form-urlencoded" },
      body: "elapsed_ms=" + ms
    }).then(function (r) { if (r.status >= 500) clock.giveBack(ms); })
      .catch(function () { clock.giveBack(ms); });
  }
  setInterval(heartbeat, HEARTBEAT_MS);

  function beacon() {
    var t = task();
    if (!t || !navigator.sendBeacon) return;
    var ms = clock.take();
    if (ms < 1) return;
    var data = new FormData();
    data.append("csrfmiddlewaretoken", csrfToken());
    data.append("elapsed_ms", String(ms));
    navigator.sendBeacon(t.dataset.heartbeatUrl, data);
  }
  document.addEventListener("visibilitychange", function () {
    clock.lastTick = Date.now();
    if (document.hidden) beacon();
  });
  window.addEventListener("pagehide", beacon);

  /* --- htmx: time with every save, one save at a time --------------------------------- */
  var busy = false;
  var inflightMs = 0;
  var pending = [];
  var busyTimer = null;
  var lastWasShortcut = false;
  var focusBefore = null;

  function setBusy(value) {
    busy = value;
    clearTimeout(busyTimer);
    // Never let a lost event block the keyboard for good.
    if (value) busyTimer = setTimeout(function () { busy = false; drain(); }, 15000);
  }

  function drain() {
    while (!busy && pending.length) perform(pending.shift());
  }

  document.addEventListener("htmx:configRequest", function (evt) {
    inflightMs = clock.take();
    evt.detail.parameters["elapsed_ms"] = String(inflightMs);
    // The saved version this page shows: when it is still current the server answers with
    // only the rows that changed (swapped out of band), else with the whole task.
    var bar = document.getElementById("task-bar");
    var t = task();
    if (bar && t && evt.detail.elt && t.contains(evt.detail.elt)) {
      evt.detail.parameters["seen"] = bar.dataset.version || "";
    }
  });
  document.addEventListener("htmx:beforeRequest", function () { setBusy(true); });
  document.addEventListener("htmx:afterRequest", function (evt) {
    if (!evt.detail.successful) {
      clock.giveBack(inflightMs);
      pending = []; // later keys were meant for a page state that was never saved
      showSaveError(evt.detail);
    }
    inflightMs = 0;
    setTimeout(function () { setBusy(false); drain(); }, 0);
  });

  /* --- a failed save is visible and retryable ------------------------------------------ */
  var lastSubmitter = null; // the button whose save is in flight (or failed)
  var lastClicked = null;
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var elt = evt.detail.elt;
    var t = task();
    if (!t || !elt || !t.contains(elt)) return;
    lastSubmitter = lastClicked && elt.contains(lastClicked) ? lastClicked : $("button[type='submit']", elt);
  });
  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("button[type='submit']") : null;
    if (button) lastClicked = button;
  }, true);

  function showSaveError(detail) {
    var bar = document.getElementById("task-bar");
    if (!bar || !lastSubmitter) return;
    var xhr = detail.xhr;
    var why = xhr && xhr.status ? "the server answered " + xhr.status : "the server could not be reached";
    var box = $(".save-error", bar);
    if (!box) {
      box = document.createElement("div");
      box.className = "save-error";
      box.setAttribute("role", "alert");
      var text = document.createElement("span");
      text.setAttribute("data-save-error", "");
      var retry = document.createElement("button");
      retry.type = "button";
      retry.className = "btn";
      retry.setAttribute("data-action", "retry");
      retry.innerHTML = "Retry <kbd>r</kbd>";
      box.appendChild(text);
      box.appendChild(retry);
      bar.appendChild(box);
    }
    $("[data-save-error]", box).textContent = "Not saved: " + why + ". Your last action was not stored.";
  }

  function retry() {
    var button = lastSubmitter;
    var box = $("#task-bar .save-error");
    if (!box || !button || !document.body.contains(button) || button.disabled) {
      if (box) box.remove();
      return;
    }
    box.remove();
    lastWasShortcut = true;
    button.click();
  }
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("[data-action='retry']")) retry();
  });
  document.addEventListener("htmx:beforeSwap", function () {
    var el = document.activeElement;
    var t = task();
    focusBefore = null;
    if (el && t && t.contains(el)) {
      var row = el.closest("[data-step]");
      focusBefore = {
        step: row ? row.dataset.step : null,
        rating: el.dataset ? el.dataset.rating : null,
        action: el.dataset ? el.dataset.action : null
      };
    }
  });
  document.addEventListener("htmx:afterSwap", function () { restoreFocus(); });

  function restoreFocus() {
    var t = task();
    if (!t) return;
    var next = $("[data-action='next']", t);
    if (next) { next.focus(); next.scrollIntoView({ block: "nearest" }); return; }
    var current = $("[data-current]", t);
    if (focusBefore && !lastWasShortcut) {
      var sel = "";
      if (focusBefore.step !== null) sel += "[data-step='" + focusBefore.step + "'] ";
      if (focusBefore.rating) sel += "[data-rating='" + focusBefore.rating + "']";
      else if (focusBefore.action) sel += "[data-action='" + focusBefore.action + "']";
      var same = sel.trim() ? $(sel, t) : null;
      if (same && !same.disabled) { same.focus(); return; }
    }
    if (current) {
      current.focus({ preventScroll: true });
      scrollToCurrent(current);
    }
  }

  // The current step sits just below the sticky bar (its `scroll-margin-top`), on any screen.
  function stickyOffset() {
    var bar = document.getElementById("task-bar");
    var px = bar ? bar.getBoundingClientRect().height + 12 : 80;
    document.documentElement.style.setProperty("--sticky-offset", Math.round(px) + "px");
  }
  function scrollToCurrent(current) {
    stickyOffset();
    current.scrollIntoView({ block: "start" });
  }
  window.addEventListener("resize", stickyOffset, { passive: true });

  /* --- keyboard ------------------------------------------------------------------------ */
  function hint(text) {
    var box = document.getElementById("hint");
    if (!box) {
      box = document.createElement("div");
      box.id = "hint";
      box.className = "hint";
      box.setAttribute("role", "status");
      box.setAttribute("aria-live", "polite");
      document.body.appendChild(box);
    }
    box.textContent = text;
    box.classList.add("hint--shown");
    clearTimeout(box._timer);
    box._timer = setTimeout(function () { box.classList.remove("hint--shown"); }, 2500);
  }

  function clickIfEnabled(button, otherwise) {
    if (button && !button.disabled) { lastWasShortcut = true; button.click(); return; }
    if (otherwise) hint(otherwise);
  }

  function perform(action) {
    var t = task();
    var kind = action[0];
    if (kind !== "confirm") disarm();
    if (kind === "next") {
      var next = $("[data-action='next']");
      if (next) { next.click(); }
      else if (t) { hint("Finish this task first, or give up on it."); }
      return;
    }
    if (kind === "retry") { retry(); return; }
    if (!t) return;
    var current = $("[data-current]", t);
    var closed = "This task is finished: press n for the next one.";
    if (kind === "rate" && !editable() && $("[data-alternatives]", t)) {
      // A finished found_error task: the keys rate the first unrated alternative.
      var alt = $("[data-alt-current]", t);
      var none = $("[data-alternatives-waiting]", t)
        ? "Alternatives are still being proposed."
        : "Every alternative is rated: press n for the next task.";
      clickIfEnabled(alt && $("[data-rating='" + action[1] + "']", alt), none);
    } else if (kind === "rate") {
      clickIfEnabled(current && $("[data-rating='" + action[1] + "']", current), editable() ? "No step to rate." : closed);
    } else if (kind === "flag") {
      clickIfEnabled(current && $("[data-action='flag']", current), editable() ? "No step to flag." : closed);
    } else if (kind === "undo") {
      var reopen = $("[data-action='undo-finish']", t);
      clickIfEnabled(reopen || $("[data-action='undo']", t), editable() ? "Nothing to undo." : closed);
    } else if (kind === "confirm") {
      confirmThen(action[1], closed);
    }
  }

  // Give up and Bad problem end the task: the key arms the button, the same key again presses it.
  var armed = null;
  function disarm() {
    if (armed) { armed.button.classList.remove("btn--armed"); clearTimeout(armed.timer); }
    armed = null;
  }
  function confirmThen(name, closed) {
    var button = $("#task [data-action='" + name + "']");
    if (!button || button.disabled) { disarm(); hint(editable() ? "Not available here." : closed); return; }
    if (armed && armed.name === name) { disarm(); clickIfEnabled(button); return; }
    disarm();
    button.classList.add("btn--armed");
    armed = { name: name, button: button, timer: setTimeout(disarm, CONFIRM_MS) };
    hint(button.dataset.confirm || "Press the key again to confirm.");
  }

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    var target = e.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    if (e.key === "?") { e.preventDefault(); toggleShortcuts(); return; }
    if (e.key === "Escape" && shortcutsOpen()) { e.preventDefault(); toggleShortcuts(false); return; }
    if (shortcutsOpen()) return;
    var action = KEYS[e.key];
    if (!action) { if (e.key !== "Shift") disarm(); return; }
    e.preventDefault();
    if (busy) { if (pending.length < 50) pending.push(action); return; }
    perform(action);
  });
  document.addEventListener("mousedown", function () { lastWasShortcut = false; }, true);
  document.addEventListener("keydown", function (e) {
    if (e.key === "Enter" || e.key === " " || e.key === "Tab") lastWasShortcut = false;
  }, true);

  /* --- shortcuts overlay --------------------------------------------------------------- */
  var returnFocus = null;
  function shortcutsOpen() { var o = document.getElementById("shortcuts"); return !!o && !o.hidden; }
  function toggleShortcuts(show) {
    var overlay = document.getElementById("shortcuts");
    if (!overlay) return;
    var open = typeof show === "boolean" ? show : overlay.hidden;
    if (open) {
      returnFocus = document.activeElement;
      overlay.hidden = false;
      var close = $("[data-action='close-shortcuts']", overlay);
      if (close) close.focus();
    } else {
      overlay.hidden = true;
      if (returnFocus && returnFocus.focus) returnFocus.focus();
    }
  }
  document.addEventListener("click", function (e) {
    var el = e.target.closest ? e.target.closest("[data-action='shortcuts'], [data-action='close-shortcuts']") : null;
    if (el) { toggleShortcuts(el.dataset.action === "shortcuts"); return; }
    if (e.target.id === "shortcuts") toggleShortcuts(false);
  });

  /* --- start-up ------------------------------------------------------------------------ */
  // Scripts are deferred in order, so htmx is here already; register before it fires htmx:load.
  if (window.htmx) {
    // 409 = the rules refused the action: still show the re-rendered task and its message.
    window.htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "409", swap: true, error: false },
      { code: "[45]..", swap: false, error: true }
    ];
    // Settle at once: new buttons get their htmx handlers before the next queued key runs
    // (with the default 20 ms delay a fast key would hit an unprocessed form).
    window.htmx.config.defaultSettleDelay = 0;
    window.htmx.onLoad(renderMath);
  }
  // On narrow screens the top navigation collapses behind a Menu button (CSS shows it).
  function collapsibleNav() {
    var bar = $(".topbar");
    var nav = $(".topbar__nav", bar || document);
    // Only pages that load labeling.css (which says so) style the toggle.
    if (!$("meta[name='stepwise-nav'][content='collapsible']")) return;
    if (!bar || !nav || $(".nav-toggle", bar)) return;
    nav.id = nav.id || "topbar-nav";
    var toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "btn nav-toggle";
    toggle.textContent = "Menu";
    toggle.setAttribute("aria-expanded", "false");
    toggle.setAttribute("aria-controls", nav.id);
    toggle.addEventListener("click", function () {
      var open = bar.classList.toggle("topbar--open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
    bar.insertBefore(toggle, nav);
    bar.classList.add("topbar--js");
  }

  function start() {
    if (!window.htmx) renderMath(document.body);
    collapsibleNav();
    stickyOffset();
    var current = $("#task [data-current]");
    if (current) current.scrollIntoView({ block: "nearest" });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

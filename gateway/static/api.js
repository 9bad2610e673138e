// Calls to the gateway: /proxy/<service>-<method> with the caller's token, and small helpers.
"use strict";

const Api = (() => {
  const TOKEN_KEY = "mirror.token";

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function setToken(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  }

  function headers(extra) {
    const out = Object.assign({}, extra || {});
    if (token()) out.Authorization = "Bearer " + token();
    return out;
  }

  class CallError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  // Every failure the user must act on (a missing token) is announced once, here.
  let onUnauthorized = () => {};

  async function fetchAuth(url, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = headers(opts.headers);
    const response = await fetch(url, opts);
    if (response.status === 401) onUnauthorized();
    return response;
  }

  // POST so that text made of digits, nulls and lists arrive as they are.
  async function call(service, method, args) {
    const response = await fetchAuth(`/proxy/${service}-${method}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(args || {}),
    });
    let answer;
    try {
      answer = await response.json();
    } catch (err) {
      throw new CallError(`${service}.${method}: HTTP ${response.status}`, response.status);
    }
    if (!Array.isArray(answer) || answer[0] !== 0) {
      const message = Array.isArray(answer) ? answer[1] : JSON.stringify(answer);
      throw new CallError(String(message), response.status);
    }
    return answer[1];
  }

  // A gateway route that is not served answers 404 "no route: ..." (gateway/routes.py).
  async function isNoRoute(response) {
    if (response.status !== 404) return false;
    try {
      const body = await response.clone().json();
      return Array.isArray(body) && String(body[1]).startsWith("no route");
    } catch (err) {
      return false;
    }
  }

  function fileUrl(jobId, kind, key) {
    return `/files/jobs/${encodeURIComponent(jobId)}/${kind}/${encodeURIComponent(key)}`;
  }

  return { token, setToken, call, fetchAuth, isNoRoute, fileUrl, CallError,
           set onUnauthorized(fn) { onUnauthorized = fn; } };
})();

const FINAL_STATES = ["COMPLETED", "FAILED", "KILLED"];
const JOB_STATES = ["QUEUED", "PREPARING", "READY", "RUNNING", "COMPLETED", "FAILED", "KILLED"];

// A DOM element: el("td", {class: "x", onclick: fn}, "text", child, ...).
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function stateBadge(state) {
  return el("span", { class: `state state-${String(state).toLowerCase()}` }, state);
}

function ageText(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 90) return `${seconds.toFixed(1)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

function timeText(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function durationText(seconds) {
  if (seconds === null || seconds === undefined) return "unknown";
  if (seconds < 90) return `${Number(seconds).toFixed(1)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

// One bar with a segment per job state, its width the state's share of `counts`.
function stateBar(counts, total) {
  const bar = el("div", { class: "bar", title: JOB_STATES.map((s) => `${s}: ${counts[s] || 0}`).join(", ") });
  for (const state of JOB_STATES) {
    const n = counts[state] || 0;
    if (!n) continue;
    bar.append(el("span", {
      class: `seg state-${state.toLowerCase()}`, style: `flex-grow: ${n}`,
      dataset: { state, count: n },
    }, n));
  }
  if (!total) bar.append(el("span", { class: "seg empty" }, "no jobs"));
  return bar;
}

// A button that acts on a second click within 5 s; `done(error, answer)` reports how it went.
function armed(button, label, action, done) {
  let timer = null;
  button.addEventListener("click", async () => {
    if (button.disabled) return;
    if (!button.classList.contains("armed")) {
      button.classList.add("armed");
      button.textContent = `Confirm ${label.toLowerCase()}`;
      timer = setTimeout(() => {
        button.classList.remove("armed");
        button.textContent = label;
      }, 5000);
      return;
    }
    clearTimeout(timer);
    button.classList.remove("armed");
    button.textContent = label;
    button.disabled = true;
    let error = null;
    let answer;
    try {
      answer = await action();
    } catch (err) {
      error = err;
    } finally {
      button.disabled = false;
    }
    done(error, answer);
    App.refresh();
  });
}

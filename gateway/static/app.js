// The dashboard's shell: login, routing between the pages, live updates.
"use strict";

const App = (() => {
  const POLL_MS = 2000;
  // With the event stream open, a slow refresh still catches what no event names.
  const SAFETY_MS = 15000;
  const SIGN_IN = "Sign in: this gateway needs a bearer token (`mirror user add NAME` prints one).";
  let view = null;
  let stream = null;
  let streamOpen = false;
  let lastRefresh = 0;
  let pending = null;
  let busy = false;
  let again = false;

  function notice(text) {
    const box = document.getElementById("notice");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function showLive() {
    const mode = streamOpen ? "live: events" : "live: polling every 2 s";
    document.getElementById("live").textContent = mode;
    document.body.dataset.live = streamOpen ? "events" : "polling";
  }

  async function refresh() {
    if (!view) return;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    lastRefresh = Date.now();
    try {
      await view.refresh();
      notice("");
    } catch (err) {
      notice(err.status === 401 ? SIGN_IN : err.message);
    } finally {
      busy = false;
      if (again) {
        again = false;
        soon();
      }
    }
  }

  // Many events arrive together (a sweep): one refresh for all of them.
  function soon() {
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      refresh();
    }, 250);
  }

  function openStream() {
    if (stream) stream.close();
    streamOpen = false;
    if (typeof EventSource === "undefined") return showLive();
    const query = Api.token() ? `?token=${encodeURIComponent(Api.token())}` : "";
    stream = new EventSource(`/events${query}`);
    stream.onopen = () => {
      streamOpen = true;
      showLive();
    };
    const onEvent = (message) => {
      const data = JSON.parse(message.data || "{}");
      // A page may say which events concern it (a sweep's page: its project's jobs).
      if (view && view.wants && !view.wants(message.type, data)) return;
      if (view && view.onEvent) view.onEvent(message.type, data);
      soon();
    };
    stream.addEventListener("job", onEvent);
    stream.addEventListener("machine", onEvent);
    stream.onmessage = onEvent;
    stream.onerror = () => {
      streamOpen = false;
      showLive();
      // CLOSED: the gateway answered without a stream (404: no /events), so poll for good.
      // CONNECTING: the browser reconnects with Last-Event-ID by itself.
      if (stream.readyState === EventSource.CLOSED) stream = null;
    };
    showLive();
  }

  // [hash pattern, page name, the page's view]; the overview for anything else.
  const ROUTES = [
    [/^#\/jobs?\/(\d+)/, "job", (root, id) => JobPage.create(root, id)],
    [/^#\/sweeps?\/(\d+)/, "sweep", (root, id) => SweepPage.create(root, id)],
    [/^#\/sweeps\/?$/, "sweeps", (root) => SweepList.create(root)],
  ];

  function route() {
    if (view && view.leave) view.leave();
    const root = document.getElementById("view");
    let page = "overview";
    view = null;
    for (const [pattern, name, make] of ROUTES) {
      const match = pattern.exec(location.hash);
      if (!match) continue;
      page = name;
      view = make(root, Number(match[1]));
      break;
    }
    if (!view) view = Overview.create(root);
    document.body.dataset.page = page;
    refresh();
  }

  function setupLogin() {
    const form = document.getElementById("login");
    const field = document.getElementById("token");
    const out = document.getElementById("logout");
    const show = () => {
      out.hidden = !Api.token();
      field.value = "";
      field.placeholder = Api.token() ? "signed in (token kept for this tab)" : "bearer token";
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      Api.setToken(field.value.trim());
      notice("");
      show();
      openStream();
      refresh();
    });
    out.addEventListener("click", () => {
      Api.setToken("");
      show();
      openStream();
      refresh();
    });
    Api.onUnauthorized = () => notice(SIGN_IN);
    show();
  }

  function start() {
    setupLogin();
    window.addEventListener("hashchange", route);
    openStream();
    route();
    setInterval(() => {
      const wait = streamOpen ? SAFETY_MS : POLL_MS;
      if (Date.now() - lastRefresh >= wait && !document.hidden) refresh();
    }, 500);
  }

  return { start, refresh, notice };
})();

document.addEventListener("DOMContentLoaded", App.start);

// The overview page: machines, projects with a bar per state, and the job list with filters.
"use strict";

const Overview = (() => {
  // Jobs counted for the project bars (job.list answers newest first).
  const BAR_LIMIT = 5000;
  const LIST_LIMIT = 200;
  // Filters outlive a visit to a job page.
  const filters = { state: "", p_id: "", rid: "", search: "" };
  // A job's parameters never change once dispatched: asked once per job.
  const paramsOf = new Map();

  function machineRows(machines, health) {
    return machines.map((m) => {
      const ruok = health.get(m.rid);
      let status = m.online ? "online" : "offline";
      if (ruok && ruok.stalled_jobs && ruok.stalled_jobs.length) {
        status = `stalled: jobs ${ruok.stalled_jobs.join(", ")}`;
      }
      const ok = ruok ? ruok.ok : m.online;
      return el("tr", { dataset: { rid: m.rid } },
        el("td", {}, m.rid),
        el("td", {}, m.name),
        el("td", {}, el("span", { class: ok ? "health ok" : "health bad" }, status)),
        el("td", { class: "num" }, m.slots),
        el("td", { class: "num" }, m.used_cores),
        el("td", { class: "num" }, m.running),
        el("td", { class: "num" }, ruok ? ruok.queue_length : m.queued),
        el("td", {}, ageText(m.last_heartbeat)),
        el("td", {}, m.autorun ? "autorun" : "manual"),
        el("td", {}, (m.tags || []).join(", ")));
    });
  }

  function projectRows(projects, jobs) {
    const counts = new Map();
    for (const job of jobs) {
      const byState = counts.get(job.p_id) || {};
      byState[job.state] = (byState[job.state] || 0) + 1;
      counts.set(job.p_id, byState);
    }
    return projects.map((p) => {
      const byState = counts.get(p.p_id) || {};
      const total = Object.values(byState).reduce((a, b) => a + b, 0);
      const name = p.name === "__submissions__" ? "submitted scripts" : p.name;
      return el("tr", { dataset: { pId: p.p_id } },
        el("td", {}, p.p_id),
        el("td", {}, el("a", { href: "#/", onclick: () => setFilter("p_id", String(p.p_id)) }, name)),
        el("td", { class: "num" }, total),
        el("td", { class: "barcell" }, stateBar(byState, total)));
    });
  }

  // "mach=0.6" matches that parameter; any other text matches within "name=value" pairs.
  function matches(job, text) {
    const params = paramsOf.get(job.job_id) || {};
    const pairs = Object.entries(params).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`);
    const haystack = [job.state_name || "", job.name || "", ...pairs].join(" ").toLowerCase();
    return text.toLowerCase().split(/\s+/).filter(Boolean).every((term) => {
      const [key, sep, value] = splitOnce(term);
      if (sep && key && value !== "") {
        const found = Object.entries(params).find(([k]) => k.toLowerCase() === key);
        if (found) return String(found[1]).toLowerCase() === value || Number(found[1]) === Number(value);
      }
      return haystack.includes(term);
    });
  }

  function splitOnce(term) {
    const at = term.indexOf("=");
    return at < 0 ? [term, "", ""] : [term.slice(0, at), "=", term.slice(at + 1)];
  }

  async function loadParams(jobs) {
    const missing = jobs.filter((j) => !paramsOf.has(j.job_id)).slice(0, 100);
    // A few at a time: the gateway has a bounded number of workers.
    for (let i = 0; i < missing.length; i += 8) {
      await Promise.all(missing.slice(i, i + 8).map(async (job) => {
        try {
          paramsOf.set(job.job_id, (await Api.call("job", "query", { job_id: job.job_id })).params || {});
        } catch (err) {
          paramsOf.set(job.job_id, {});
        }
      }));
    }
  }

  function jobRows(jobs, projects, machines) {
    const projectName = new Map(projects.map((p) => [p.p_id, p.name]));
    const machineName = new Map(machines.map((m) => [m.rid, m.name]));
    return jobs.map((j) => el("tr", { class: "job", dataset: { jobId: j.job_id, state: j.state } },
      el("td", {}, el("a", { href: `#/job/${j.job_id}` }, j.job_id)),
      el("td", {}, projectName.get(j.p_id) || j.p_id),
      el("td", {}, j.state_name || j.name || ""),
      el("td", {}, stateBadge(j.state)),
      el("td", {}, j.step || ""),
      el("td", {}, j.rid === null ? "unplaced" : machineName.get(j.rid) || j.rid),
      el("td", {}, timeText(j.submit_time)),
      el("td", { class: "err" }, j.error || "")));
  }

  function select(name) {
    return el("select", { name, onchange: (e) => setFilter(name, e.target.value) });
  }

  // Options replaced only when they change: an open drop-down stays open across refreshes.
  function fillSelect(box, label, options) {
    const wanted = [["", `any ${label}`], ...options];
    const have = [...box.options].map((o) => [o.value, o.text]);
    if (JSON.stringify(have) !== JSON.stringify(wanted)) {
      box.replaceChildren(...wanted.map(([value, text]) => el("option", { value }, text)));
    }
    box.value = filters[box.name];
  }

  let page = null;

  function setFilter(name, value) {
    filters[name] = value;
    if (page) page.refresh();
  }

  function create(root) {
    const machinesBody = el("tbody");
    const projectsBody = el("tbody");
    const jobsBody = el("tbody", { id: "jobs" });
    const selects = { state: select("state"), p_id: select("p_id"), rid: select("rid") };
    const filterBox = el("div", { class: "filters" }, Object.values(selects));
    const count = el("span", { class: "muted" });
    const search = el("input", {
      type: "search", name: "search", placeholder: "search parameters: mach=0.6 alpha", value: filters.search,
      oninput: (e) => { filters.search = e.target.value; page.refresh(); },
    });
    root.replaceChildren(
      el("section", {}, el("h2", {}, "Machines"),
        el("table", { id: "machines" }, el("thead", {}, el("tr", {},
          ["rid", "name", "health", "slots", "used", "running", "queued", "heartbeat age", "mode", "tags"]
            .map((h) => el("th", {}, h)))), machinesBody)),
      el("section", {}, el("h2", {}, "Projects"),
        el("table", { id: "projects" }, el("thead", {}, el("tr", {},
          ["id", "project", "jobs", "states"].map((h) => el("th", {}, h)))), projectsBody)),
      el("section", {}, el("h2", {}, "Jobs ", count), filterBox, search,
        el("table", { id: "joblist" }, el("thead", {}, el("tr", {},
          ["id", "project", "parameters", "state", "step", "machine", "submitted", "error"]
            .map((h) => el("th", {}, h)))), jobsBody)));

    async function refresh() {
      const args = { limit: LIST_LIMIT };
      if (filters.state) args.state = filters.state;
      if (filters.p_id) args.p_id = Number(filters.p_id);
      if (filters.rid) args.rid = Number(filters.rid);
      const [machines, projects, all, listed] = await Promise.all([
        Api.call("machine", "list"),
        Api.call("project", "list"),
        Api.call("job", "list", { limit: BAR_LIMIT }),
        Api.call("job", "list", args),
      ]);
      const health = new Map();
      await Promise.all(machines.map(async (m) => {
        try {
          health.set(m.rid, await Api.call("machine", "ruok", { rid: m.rid }));
        } catch (err) {
          // machine.ruok refuses only a machine it does not know: list's answer stands.
        }
      }));
      let jobs = listed;
      if (filters.search.trim()) {
        await loadParams(listed);
        jobs = listed.filter((j) => matches(j, filters.search.trim()));
      }
      machinesBody.replaceChildren(...machineRows(machines, health));
      projectsBody.replaceChildren(...projectRows(projects, all));
      fillSelect(selects.state, "state", JOB_STATES.map((s) => [s, s]));
      fillSelect(selects.p_id, "project", projects.map((p) => [String(p.p_id), `${p.p_id} ${p.name}`]));
      fillSelect(selects.rid, "machine", machines.map((m) => [String(m.rid), `${m.rid} ${m.name}`]));
      jobsBody.replaceChildren(...jobRows(jobs, projects, machines));
      count.textContent = `(${jobs.length}${listed.length >= LIST_LIMIT ? ` of the newest ${LIST_LIMIT}` : ""})`;
    }

    page = { refresh, leave: () => { page = null; } };
    return page;
  }

  return { create, matches };
})();

// A sweep's page: a bar per state, progress and estimate, failures, its jobs, kill / retry / throttle.
"use strict";

const SweepPage = (() => {
  const PAGE = 100;
  // The job filters outlive a visit to one of the sweep's jobs (per sweep).
  const filtersOf = new Map();

  function stateRows(sweep) {
    return JOB_STATES.map((state) => {
      const n = (sweep.states || {})[state] || 0;
      const share = sweep.total ? (100 * n) / sweep.total : 0;
      return el("tr", { dataset: { state, count: n } },
        el("td", {}, stateBadge(state)),
        el("td", { class: "hbarcell" }, el("div", { class: "hbar" },
          el("div", { class: `hfill state-${state.toLowerCase()}`, style: `width: ${share}%` }))),
        el("td", { class: "num" }, n));
    });
  }

  function summary(sweep) {
    const est = sweep.estimate || {};
    const left = est.remaining_seconds === null || est.remaining_seconds === undefined
      ? "no job has ended yet"
      : est.remaining_seconds === 0 ? "all ended" : `about ${durationText(est.remaining_seconds)} left`;
    const share = sweep.total ? (100 * sweep.done) / sweep.total : 0;
    return [
      el("div", { class: "progress", id: "sweep-progress", dataset: { done: sweep.done, total: sweep.total } },
        el("div", { class: "fill", style: `width: ${share}%` }),
        el("span", {}, `${sweep.done} / ${sweep.total} done`)),
      el("dl", {},
        el("dt", {}, "estimate"), el("dd", { id: "sweep-estimate" }, left,
          est.mean_seconds ? ` (mean run ${durationText(est.mean_seconds)})` : ""),
        el("dt", {}, "held by agents"), el("dd", {}, sweep.running),
        el("dt", {}, "first submit"), el("dd", {}, timeText(sweep.first_submit) || "none"),
        el("dt", {}, "last end"), el("dd", {}, timeText(sweep.last_end) || "none"),
        el("dt", {}, "throttle"), el("dd", { id: "sweep-throttle" },
          sweep.max_running ? `at most ${sweep.max_running} running` : "none")),
    ];
  }

  function stepTable(steps) {
    const ids = Object.keys(steps || {});
    if (!ids.length) return el("p", { class: "muted" }, "no job has started a step");
    return el("table", {}, el("tr", {}, el("th", {}, "step"), el("th", {}, "states")),
      ids.map((id) => {
        const counts = steps[id];
        const total = Object.values(counts).reduce((a, b) => a + b, 0);
        return el("tr", { dataset: { step: id } }, el("td", {}, id), el("td", { class: "barcell" }, stateBar(counts, total)));
      }));
  }

  function failureTables(failures) {
    const byError = (failures || {}).by_error || [];
    const byParam = (failures || {}).by_parameter || {};
    if (!byError.length) return [el("p", { class: "muted" }, "no job has failed")];
    const out = [el("h3", {}, "By error"), el("table", { id: "by-error" },
      el("tr", {}, el("th", {}, "error"), el("th", { class: "num" }, "jobs")),
      byError.map((f) => el("tr", {}, el("td", { class: "err" }, f.error || "(no message)"),
        el("td", { class: "num" }, f.count))))];
    const names = Object.keys(byParam);
    if (names.length) out.push(el("h3", {}, "By parameter value (failure rate)"));
    const grid = el("div", { class: "paramgrid", id: "by-parameter" });
    for (const name of names) {
      grid.append(el("table", { dataset: { param: name } },
        el("tr", {}, el("th", {}, name), el("th", { class: "num" }, "failed / jobs"), el("th", {}, "rate")),
        byParam[name].map((r) => el("tr", { dataset: { value: r.value, rate: r.rate } },
          el("td", {}, r.value),
          el("td", { class: "num" }, `${r.failed} / ${r.jobs}`),
          el("td", { class: "hbarcell" }, el("div", { class: "hbar", title: `${(100 * r.rate).toFixed(0)} %` },
            el("div", { class: "hfill state-failed", style: `width: ${100 * r.rate}%` })))))));
    }
    out.push(grid);
    return out;
  }

  function jobRows(jobs) {
    return jobs.map((j) => el("tr", { class: "job", dataset: { jobId: j.job_id, state: j.state } },
      el("td", {}, el("a", { href: `#/job/${j.job_id}` }, j.job_id)),
      el("td", { class: "params" }, Object.entries(j.params || {})
        .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ")),
      el("td", {}, stateBadge(j.state)),
      el("td", {}, j.step || ""),
      el("td", {}, j.rid === null ? "unplaced" : j.rid),
      el("td", { class: "err" }, j.error || "")));
  }

  function create(root, sweepId) {
    const filters = filtersOf.get(sweepId) || { state: "", where: "", after: 0 };
    filtersOf.set(sweepId, filters);
    const title = el("h2", {}, `Sweep ${sweepId}`);
    const states = el("table", { id: "sweep-states", class: "statebars" });
    const head = el("div", { class: "jobhead sweephead" });
    const steps = el("div", { id: "sweep-steps" });
    const failures = el("div", { id: "failures" });
    const jobsBody = el("tbody", { id: "jobs" });
    const stateSelect = el("select", { name: "state" },
      [["", "any state"], ...JOB_STATES.map((s) => [s, s])].map(([v, t]) => el("option", { value: v }, t)));
    stateSelect.value = filters.state;
    const whereField = el("input", {
      type: "search", name: "where", value: filters.where, autocomplete: "off",
      placeholder: "where: mach >= 0.6 and alpha in (2, 8)",
    });
    const whereError = el("p", { id: "where-error", class: "err", hidden: true });
    const pageInfo = el("span", { class: "muted", id: "page-info" });
    const first = el("button", { type: "button", id: "first-page" }, "First page");
    const next = el("button", { type: "button", id: "next-page" }, "Next page");
    const scope = el("p", { class: "muted", id: "scope" });
    const outcome = el("p", { id: "sweep-outcome" });
    const kill = el("button", { type: "button", id: "sweep-kill", class: "danger" }, "Kill");
    const retry = el("button", { type: "button", id: "sweep-retry" }, "Retry failed and killed");
    // What the user types stays until it is set: refreshes fill the field only while it is untouched.
    let throttleEdited = false;
    const throttleField = el("input", {
      type: "number", min: 0, step: 1, id: "throttle-value", class: "short",
      oninput: () => { throttleEdited = true; },
    });
    const throttle = el("button", { type: "button", id: "sweep-throttle-set" }, "Set throttle");
    root.replaceChildren(
      el("p", {}, el("a", { href: "#/sweeps" }, "← sweeps"), " · ", el("a", { href: "#/" }, "overview")),
      el("section", {}, title, head, states),
      el("section", {}, el("h2", {}, "Actions"), scope,
        el("div", { class: "actions" }, kill, retry,
          el("label", {}, "at most ", throttleField, " running (0: no limit) "), throttle),
        outcome),
      el("section", {}, el("h2", {}, "Failures"), failures),
      el("section", {}, el("h2", {}, "Steps"), steps),
      el("section", {}, el("h2", {}, "Jobs ", pageInfo),
        el("form", { class: "filters", id: "where-form" }, stateSelect, whereField,
          el("button", { type: "submit" }, "Filter")),
        whereError,
        el("table", { id: "joblist" }, el("thead", {}, el("tr", {},
          ["id", "parameters", "state", "step", "machine", "error"].map((h) => el("th", {}, h)))), jobsBody),
        el("div", { class: "actions" }, first, next)));

    let sweep = null;
    let gone = false;
    let lastPage = [];

    const apply = (changes) => {
      Object.assign(filters, changes);
      App.refresh();
    };
    stateSelect.addEventListener("change", () => apply({ state: stateSelect.value, after: 0 }));
    whereField.form.addEventListener("submit", (event) => {
      event.preventDefault();
      apply({ where: whereField.value.trim(), after: 0 });
    });
    first.addEventListener("click", () => apply({ after: 0 }));
    next.addEventListener("click", () => lastPage.length && apply({ after: lastPage[lastPage.length - 1].job_id }));

    // Kill and retry act on the jobs the applied `where` selects, or on every job without one.
    const where = () => filters.where || null;
    const report = (label, say) => (err, answer) => {
      outcome.className = err ? "err" : "";
      outcome.textContent = err ? `${label}: ${err.message}` : say(answer);
    };
    armed(kill, "Kill", () => Api.call("sweep", "kill", { sweep_id: sweepId, where: where() }),
      report("Kill", (ids) => `killed ${ids.length} job(s)`));
    armed(retry, "Retry failed and killed", () => Api.call("sweep", "retry", { sweep_id: sweepId, where: where() }),
      report("Retry", (ids) => `queued ${ids.length} job(s) again`));
    armed(throttle, "Set throttle", () => {
      const text = throttleField.value.trim();
      // The service judges the number (and says what is wrong with it).
      if (text === "") throw new Error("give the most jobs to run at once (0: no limit)");
      return Api.call("sweep", "throttle", { sweep_id: sweepId, max_running: Number(text) });
    }, (err, answer) => {
      if (!err) throttleEdited = false;
      report("Throttle", (a) => (a.max_running ? `at most ${a.max_running} running` : "throttle lifted"))(err, answer);
    });

    function render() {
      title.replaceChildren(`Sweep ${sweepId} `, el("span", { class: "muted" },
        `${sweep.kind} of project ${sweep.p_id}${sweep.para_name ? `, ${sweep.para_name}` : ""}, by ${sweep.owner}`));
      head.replaceChildren(...summary(sweep));
      states.replaceChildren(...stateRows(sweep));
      steps.replaceChildren(stepTable(sweep.steps));
      failures.replaceChildren(...failureTables(sweep.failures));
      scope.textContent = filters.where
        ? `Kill and retry act on the jobs matching: ${filters.where}`
        : "Kill and retry act on every job of the sweep (filter the jobs below to act on fewer).";
      if (!throttleEdited) throttleField.value = sweep.max_running;
    }

    async function refreshJobs() {
      const args = { sweep_id: sweepId, limit: PAGE, after: filters.after };
      if (filters.state) args.state = filters.state;
      if (filters.where) args.where = filters.where;
      try {
        lastPage = await Api.call("sweep", "jobs", args);
      } catch (err) {
        // A refused filter is the user's to fix: shown by the box, not as a page error.
        if (!filters.where || !/^where/.test(err.message)) throw err;
        whereError.textContent = err.message;
        whereError.hidden = false;
        lastPage = [];
        jobsBody.replaceChildren();
        pageInfo.textContent = "";
        return;
      }
      whereError.hidden = true;
      whereError.textContent = "";
      jobsBody.replaceChildren(...jobRows(lastPage));
      pageInfo.textContent = `(${lastPage.length}${filters.after ? ` after job ${filters.after}` : ""})`;
      first.disabled = !filters.after;
      next.disabled = lastPage.length < PAGE;
    }

    async function refresh() {
      if (gone) return;
      try {
        sweep = await Api.call("sweep", "query", { sweep_id: sweepId });
      } catch (err) {
        if (!/not existed/.test(err.message)) throw err;
        gone = true;
        root.replaceChildren(el("p", { id: "gone" }, `${err.message}. `, el("a", { href: "#/sweeps" }, "Back to the sweeps")));
        return;
      }
      render();
      await refreshJobs();
    }

    // A job event concerns this sweep only if it is of the sweep's project.
    const wants = (type, data) => type === "job" && (data.sweep === undefined || String(data.sweep) === String(sweepId));
    return { refresh, wants };
  }

  return { create };
})();

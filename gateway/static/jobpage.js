// A job's page: state, progress, steps on a timeline, monitoring charts, results, logs, kill and delete.
"use strict";

const JobPage = (() => {
  const PROGRESS_KEYS = ["currentstep", "allstep"];
  // Rounds of job.logs per refresh for an ended step: its output is complete, read it all.
  const LOG_ROUNDS = 16;
  // Whether the gateway serves /files (the events side of the mesh may be absent).
  let filesRoute = null;

  function progressBar(process) {
    const current = Number((process || {}).currentstep || 0);
    const all = Number((process || {}).allstep || 0);
    const share = all > 0 ? Math.min(100, (100 * current) / all) : 0;
    return el("div", { class: "progress", dataset: { current, all } },
      el("div", { class: "fill", style: `width: ${share}%` }),
      el("span", {}, all > 0 ? `${current} / ${all}` : "no progress yet"));
  }

  function timeline(job) {
    const steps = job.steps || [];
    const starts = steps.map((s) => Date.parse(s.start_time)).filter(Number.isFinite);
    if (!starts.length) return el("p", { class: "muted" }, "no step has started");
    const t0 = Math.min(...starts);
    const ends = steps.map((s) => (s.start_time ? Date.parse(s.end_time || "") || Date.now() : t0));
    const t1 = Math.max(t0 + 1, ...ends);
    const span = t1 - t0;
    return el("div", { class: "timeline" }, steps.map((s, i) => {
      const start = s.start_time ? Date.parse(s.start_time) : null;
      const end = start === null ? null : ends[i];
      const left = start === null ? 0 : (100 * (start - t0)) / span;
      const width = start === null ? 0 : Math.max(0.5, (100 * (end - start)) / span);
      const seconds = start === null ? "" : `${((end - start) / 1000).toFixed(1)} s`;
      const code = s.exit_code === null || s.exit_code === undefined ? "" : `exit ${s.exit_code}`;
      return el("div", { class: "trow", dataset: { step: s.id, state: s.state } },
        el("span", { class: "tlabel" }, s.id),
        el("div", { class: "ttrack" }, el("div", {
          class: `tbar state-${String(s.state).toLowerCase()}`,
          style: `left: ${left}%; width: ${width}%`,
          title: `${s.state} ${timeText(s.start_time)} - ${timeText(s.end_time)} ${code}`,
        })),
        el("span", { class: "tinfo" }, `${s.state} ${seconds} ${code}`));
    }));
  }

  async function fetchFile(jobId, kind, key) {
    const response = await Api.fetchAuth(Api.fileUrl(jobId, kind, key));
    if (await Api.isNoRoute(response)) {
      filesRoute = false;
      return null;
    }
    filesRoute = true;
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try {
        const body = await response.json();
        message = Array.isArray(body) ? body[1] : body.detail || message;
      } catch (err) { /* not JSON: the status says enough */ }
      throw new Error(message);
    }
    return response.text();
  }

  // A download through the gateway: with a token, the browser cannot send it on a plain link.
  async function download(event, jobId, key) {
    if (!Api.token()) return;
    event.preventDefault();
    const response = await Api.fetchAuth(Api.fileUrl(jobId, "result", key));
    if (!response.ok) return App.notice(`download of ${key}: HTTP ${response.status}`);
    const name = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") || "");
    const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name ? name[1] : key });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  function create(root, jobId) {
    const head = el("div", { class: "jobhead" });
    const actions = el("div", { class: "actions" });
    const kill = el("button", { id: "kill", type: "button" }, "Kill");
    const remove = el("button", { id: "delete", type: "button", class: "danger" }, "Delete");
    actions.append(kill, remove);
    const progress = el("div");
    const steps = el("div", { id: "steps" });
    const params = el("div");
    const charts = el("div", { id: "charts" });
    const results = el("div", { id: "results" });
    const tabs = el("div", { class: "tabs" });
    const stdout = el("pre", { id: "stdout", class: "log" });
    const stderr = el("pre", { id: "stderr", class: "log err" });
    const events = el("ol", { id: "events", class: "events" });
    root.replaceChildren(
      el("p", {}, el("a", { href: "#/" }, "← overview")),
      head, actions,
      el("section", {}, el("h2", {}, "Progress"), progress),
      el("section", {}, el("h2", {}, "Steps"), steps),
      el("section", {}, el("h2", {}, "Monitoring"), charts),
      el("section", {}, el("h2", {}, "Results"), results),
      el("section", {}, el("h2", {}, "Output"), tabs,
        el("div", { class: "logs" }, el("div", {}, el("h3", {}, "stdout"), stdout),
          el("div", {}, el("h3", {}, "stderr"), stderr))),
      el("section", {}, el("h2", {}, "Parameters"), params),
      el("section", {}, el("h2", {}, "Events"), events));

    let job = null;
    let gone = false;
    let chosenStep = null;
    const logs = new Map();
    const chartBoxes = new Map();
    // Monitoring read once more after the job ended, then left as it is.
    let lastReadFinal = false;

    const report = (label) => (err) => App.notice(err ? `${label}: ${err.message}` : "");
    armed(kill, "Kill", () => Api.call("job", "cancel", { job_id: jobId }), report("Kill"));
    armed(remove, "Delete", async () => {
      await Api.call(`jobdelete_${job.rid}`, "do", { job_id: jobId, force: 1 });
      location.hash = "#/";
    }, report("Delete"));

    function renderHead() {
      const final = FINAL_STATES.includes(job.state);
      head.replaceChildren(
        el("h2", {}, `Job ${job.job_id} `, stateBadge(job.state), " ",
          el("span", { class: "muted" }, job.state_name || job.name || "")),
        el("dl", {},
          el("dt", {}, "project"), el("dd", {}, job.p_id),
          el("dt", {}, "machine"), el("dd", {}, job.rid === null ? "not placed yet" : job.rid),
          el("dt", {}, "sweep"), el("dd", {}, job.sweep_id === null || job.sweep_id === undefined
            ? "none" : el("a", { href: `#/sweep/${job.sweep_id}`, id: "job-sweep" }, job.sweep_id)),
          el("dt", {}, "step"), el("dd", {}, job.step || ""),
          el("dt", {}, "submitted"), el("dd", {}, timeText(job.submit_time)),
          el("dt", {}, "started"), el("dd", {}, timeText(job.start_time)),
          el("dt", {}, "ended"), el("dd", {}, timeText(job.end_time)),
          el("dt", {}, "error"), el("dd", { class: "err" }, job.error || "")));
      kill.disabled = final;
      remove.disabled = job.rid === null;
      remove.title = job.rid === null ? "not placed on a machine: kill it instead" : "";
      head.dataset.state = job.state;
    }

    function renderParams() {
      const rows = Object.entries(job.params || {}).map(([k, v]) =>
        el("tr", {}, el("th", {}, k), el("td", {}, typeof v === "object" ? JSON.stringify(v) : v)));
      params.replaceChildren(el("table", { class: "kv" }, rows));
    }

    async function renderCharts(process) {
      const keys = Object.keys(process).filter((k) => !PROGRESS_KEYS.includes(k));
      if (!keys.length) {
        charts.replaceChildren(el("p", { class: "muted" }, "no monitoring file published yet"));
        return;
      }
      if (!chartBoxes.size) charts.replaceChildren();
      for (const key of keys) {
        const value = process[key];
        let entry = chartBoxes.get(key);
        if (!entry) {
          entry = { box: el("div", { class: "chart", dataset: { chartKey: key } }), info: el("p", { class: "muted" }) };
          chartBoxes.set(key, entry);
          charts.append(el("div", { class: "chartwrap" }, el("h3", {}, key), entry.box, entry.info));
        }
        if (typeof value !== "string" || !value.includes("://")) {
          entry.box.replaceChildren(el("span", { class: "value" }, String(value)));
          continue;
        }
        const link = el("a", { href: filesRoute === false ? value : Api.fileUrl(jobId, "process", key) }, "data file");
        if (filesRoute === false) {
          entry.info.replaceChildren(link, " (this gateway does not serve /files: the chart needs it)");
          continue;
        }
        try {
          const text = await fetchFile(jobId, "process", key);
          if (text === null) {
            entry.info.replaceChildren(el("a", { href: value }, "data file"),
              " (this gateway does not serve /files: the chart needs it)");
            continue;
          }
          const points = Charts.show(entry.box, `${jobId}/${key}`, key, text);
          entry.info.replaceChildren(`${points} points · `, link);
        } catch (err) {
          entry.info.replaceChildren(`chart: ${err.message} · `, link);
        }
      }
    }

    function renderResults(result) {
      const keys = Object.keys(result || {});
      if (!keys.length) {
        results.replaceChildren(el("p", { class: "muted" }, "no results yet"));
        return;
      }
      results.replaceChildren(el("ul", {}, keys.map((key) => {
        const href = filesRoute === false ? result[key] : Api.fileUrl(jobId, "result", key);
        return el("li", {}, el("a", {
          href, class: "result", dataset: { key },
          onclick: (event) => filesRoute !== false && download(event, jobId, key),
        }, key));
      })));
    }

    function renderTabs() {
      const current = chosenStep || job.step || ((job.steps || [])[0] || {}).id;
      tabs.replaceChildren(...(job.steps || []).map((s) => el("button", {
        type: "button", class: s.id === current ? "tab on" : "tab",
        onclick: () => { chosenStep = s.id; showLogs(); refreshLogs(true); },
      }, s.id)));
      return current;
    }

    function showLogs() {
      const current = renderTabs();
      const entry = logs.get(current) || { out: "", err: "" };
      for (const [pre, text] of [[stdout, entry.out], [stderr, entry.err]]) {
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.textContent = text;
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      }
    }

    async function refreshLogs(force) {
      if (!job || job.rid === null) return;
      const step = renderTabs();
      if (!step) return;
      const entry = logs.get(step) || { out: "", err: "", offOut: 0, offErr: 0, done: false };
      logs.set(step, entry);
      const stepInfo = (job.steps || []).find((s) => s.id === step) || {};
      const ended = FINAL_STATES.includes(job.state) || ["DONE", "FAILED", "KILLED"].includes(stepInfo.state);
      if (entry.done && !force) return;
      for (let round = 0; round < (ended ? LOG_ROUNDS : 1); round += 1) {
        const answer = await Api.call("job", "logs", {
          job_id: jobId, step, offset_out: entry.offOut, offset_err: entry.offErr,
        });
        if (answer.offset_out < entry.offOut || answer.offset_err < entry.offErr) {
          Object.assign(entry, { out: "", err: "" }); // the step ran again: its output starts afresh
        }
        entry.out += answer.stdout;
        entry.err += answer.stderr;
        entry.offOut = answer.offset_out;
        entry.offErr = answer.offset_err;
        if (!answer.stdout && !answer.stderr) {
          entry.done = ended;
          break;
        }
      }
      showLogs();
    }

    async function refresh() {
      if (gone) return;
      try {
        job = await Api.call("job", "query", { job_id: jobId });
      } catch (err) {
        if (/not existed/.test(err.message)) {
          gone = true;
          root.replaceChildren(el("p", { id: "gone" }, `Job ${jobId} no longer exists. `,
            el("a", { href: "#/" }, "Back to the overview")));
          Charts.forget(`${jobId}/`);
          return;
        }
        throw err;
      }
      const final = FINAL_STATES.includes(job.state);
      renderHead();
      progress.replaceChildren(progressBar(job.process));
      steps.replaceChildren(timeline(job));
      renderParams();
      const [data, history] = await Promise.all([
        Api.call("jobgetdata", "do", { job_id: jobId }),
        Api.call("job", "events", { job_id: jobId }),
      ]);
      events.replaceChildren(...history.map((e) => el("li", {},
        el("time", {}, timeText(e.time)), " ", stateBadge(e.state), " ", e.step ? `[${e.step}] ` : "", e.message)));
      if (!final || !lastReadFinal) {
        await renderCharts(data.process || {});
        lastReadFinal = final;
      }
      renderResults(data.result);
      try {
        await refreshLogs(false);
      } catch (err) {
        stdout.textContent = `(${err.message})`;
      }
    }

    return { refresh, leave: () => Charts.forget(`${jobId}/`) };
  }

  return { create };
})();

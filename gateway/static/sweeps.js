// The sweep list: the caller's sweeps (sweep.list), newest first, with progress and a bar per state.
"use strict";

const SweepList = (() => {
  const LIMIT = 100;

  function progressCell(sweep) {
    const share = sweep.total ? (100 * sweep.done) / sweep.total : 0;
    return el("div", { class: "progress", dataset: { done: sweep.done, total: sweep.total } },
      el("div", { class: "fill", style: `width: ${share}%` }),
      el("span", {}, `${sweep.done} / ${sweep.total}`));
  }

  function rows(sweeps, projects) {
    const projectName = new Map(projects.map((p) => [p.p_id, p.name]));
    return sweeps.map((s) => {
      const name = projectName.get(s.p_id);
      return el("tr", { class: "sweep", dataset: { sweepId: s.sweep_id, done: s.done, total: s.total } },
        el("td", {}, el("a", { href: `#/sweep/${s.sweep_id}` }, s.sweep_id)),
        el("td", {}, name === "__submissions__" ? "submitted scripts" : `${s.p_id} ${name || ""}`),
        el("td", {}, s.owner),
        el("td", {}, s.kind),
        el("td", {}, s.para_name || ""),
        el("td", {}, timeText(s.created)),
        el("td", { class: "progresscell" }, progressCell(s)),
        el("td", { class: "barcell" }, stateBar(s.states || {}, s.total)),
        el("td", { class: "num" }, s.max_running ? s.max_running : "none"));
    });
  }

  function create(root) {
    const body = el("tbody", { id: "sweeps" });
    const count = el("span", { class: "muted" });
    root.replaceChildren(
      el("section", {}, el("h2", {}, "Sweeps ", count),
        el("p", { class: "muted" }, "One sweep per dispatch (or batch of submitted scripts). ",
          "Click an id for its states, failures and jobs."),
        el("table", { id: "sweeplist" }, el("thead", {}, el("tr", {},
          ["id", "project", "owner", "kind", "parameter file", "created", "done / total", "states", "throttle"]
            .map((h) => el("th", {}, h)))), body)));

    async function refresh() {
      const [sweeps, projects] = await Promise.all([
        Api.call("sweep", "list", { limit: LIMIT }),
        Api.call("project", "list"),
      ]);
      body.replaceChildren(...rows(sweeps, projects));
      if (!sweeps.length) body.append(el("tr", {}, el("td", { colspan: 9, class: "muted" }, "no sweep yet")));
      count.textContent = `(${sweeps.length}${sweeps.length >= LIMIT ? `, the newest ${LIMIT}` : ""})`;
    }

    // Only job events change a sweep's counts.
    return { refresh, wants: (type) => type === "job" };
  }

  return { create };
})();

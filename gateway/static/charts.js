// Monitoring charts: an adapter's Process data file parsed into numeric columns, drawn with uPlot.
"use strict";

const Charts = (() => {
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];
  // Every live chart by "<job id>/<key>", so that tests and the console can read its data.
  const live = {};
  window.mirrorCharts = live;

  function isNumber(text) {
    return text !== "" && Number.isFinite(Number(text));
  }

  // Column names from a header line ("step residual") or a comment ("# ... columns: it res").
  function namesFrom(line) {
    const match = /columns?\s*:\s*(.+)$/i.exec(line);
    const text = match ? match[1] : line.replace(/^#+/, "");
    return text.trim().split(/[\s,;]+/).filter(Boolean);
  }

  // Text -> {names, columns}: rows of numbers separated by blanks, commas or semicolons;
  // "#" lines and a leading header line name the columns. Only columns numeric on every row.
  function parse(text) {
    let names = [];
    const rows = [];
    for (const raw of String(text).split(/\r?\n/)) {
      const line = raw.trim();
      if (!line) continue;
      if (line.startsWith("#") || line.startsWith("%")) {
        if (/columns?\s*:/i.test(line)) names = namesFrom(line);
        continue;
      }
      const cells = line.split(/[\s,;]+/);
      if (!cells.some(isNumber)) {
        if (!rows.length) names = namesFrom(line);
        continue;
      }
      rows.push(cells);
    }
    const width = rows.reduce((most, row) => Math.max(most, row.length), 0);
    const columns = [];
    for (let c = 0; c < width; c += 1) {
      if (rows.every((row) => isNumber(row[c] ?? ""))) {
        columns.push({ name: names[c] || `column ${c + 1}`, values: rows.map((row) => Number(row[c])) });
      }
    }
    return { columns, rows: rows.length };
  }

  // uPlot's data: x is the first numeric column when there are two or more, else the row number.
  function series(parsed) {
    const cols = parsed.columns;
    if (!cols.length) return null;
    if (cols.length === 1) {
      return { x: "row", ys: cols, data: [cols[0].values.map((_, i) => i + 1), cols[0].values] };
    }
    const ys = cols.slice(1);
    return { x: cols[0].name, ys, data: [cols[0].values, ...ys.map((c) => c.values)] };
  }

  // A residual falls over decades: a log scale shows its curve, a linear one a corner.
  function wantsLog(ys) {
    const values = ys.flatMap((c) => c.values);
    if (!values.length || values.some((v) => v <= 0)) return false;
    return Math.max(...values) / Math.min(...values) > 100;
  }

  // Axis labels that keep a residual's 1e-5 from reading as 0.
  function tick(v) {
    if (v === null || v === undefined) return "";
    const size = Math.abs(v);
    if (v !== 0 && (size < 1e-3 || size >= 1e6)) return v.toExponential(0);
    return String(Number(v.toPrecision(4)));
  }

  function options(title, shape, width) {
    return {
      title,
      width,
      height: 260,
      scales: { x: { time: false }, y: { distr: wantsLog(shape.ys) ? 3 : 1 } },
      axes: [{ label: shape.x }, { values: (u, splits) => splits.map(tick), size: 60 }],
      series: [{ label: shape.x }, ...shape.ys.map((c, i) => ({
        label: c.name, stroke: COLORS[i % COLORS.length], width: 2, points: { show: false },
      }))],
    };
  }

  // Draw or update the chart of `key` in `box` from the file's text; answers the point count.
  function show(box, id, title, text) {
    const shape = series(parse(text));
    const existing = live[id];
    if (!shape) {
      box.replaceChildren(el("p", { class: "muted" }, "no numeric column yet"));
      if (existing) existing.destroy();
      delete live[id];
      return 0;
    }
    const sameSeries = existing && existing.series.length === shape.data.length &&
      existing.root.isConnected && existing.root.parentNode === box;
    if (sameSeries) {
      existing.setData(shape.data);
    } else {
      if (existing) existing.destroy();
      box.replaceChildren();
      const width = Math.max(320, Math.min(box.clientWidth || 720, 900));
      live[id] = new uPlot(options(title, shape, width), shape.data, box);
    }
    return shape.data[0].length;
  }

  function forget(prefix) {
    for (const id of Object.keys(live)) {
      if (id.startsWith(prefix)) {
        live[id].destroy();
        delete live[id];
      }
    }
  }

  return { parse, show, forget };
})();

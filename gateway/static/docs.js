// /docs: renders /openapi.json (operations, parameters, schemas) with a form to try each call.
"use strict";

(() => {
  let spec = null;

  // "#/components/schemas/X" -> the object it names; schemas shown with their references resolved.
  function resolve(node, seen) {
    if (Array.isArray(node)) return node.map((item) => resolve(item, seen));
    if (!node || typeof node !== "object") return node;
    if (node.$ref) {
      const name = node.$ref.split("/").pop();
      if ((seen || []).includes(name)) return { $ref: node.$ref };
      const target = node.$ref.slice(2).split("/").reduce((at, part) => at[part], spec);
      return resolve(target, [...(seen || []), name]);
    }
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, resolve(v, seen)]));
  }

  function pretty(value) {
    return JSON.stringify(value, null, 2);
  }

  function parametersOf(pathItem, operation) {
    return [...(pathItem.parameters || []), ...(operation.parameters || [])];
  }

  function example(param) {
    if (param.example === undefined) return "";
    return typeof param.example === "object"
      ? new URLSearchParams(param.example).toString() : String(param.example);
  }

  async function send(method, path, params, form, out) {
    let url = path;
    const query = new URLSearchParams();
    const headers = {};
    for (const param of params) {
      const value = form.elements[`p-${param.in}-${param.name}`].value;
      if (param.in === "path") url = url.replace(`{${param.name}}`, encodeURIComponent(value));
      else if (value && param.in === "header") headers[param.name] = value;
      else if (value && param.style === "form" && param.explode && param.schema.type === "object") {
        for (const [k, v] of new URLSearchParams(value)) query.append(k, v);
      } else if (value) query.append(param.name, value);
    }
    if (query.toString()) url += `?${query}`;
    const options = { method: method.toUpperCase(), headers };
    const body = form.elements.body;
    if (body && body.value.trim()) {
      options.body = body.value;
      headers["Content-Type"] = "application/json";
    }
    out.textContent = `${options.method} ${url} …`;
    const controller = new AbortController();
    // A stream (/events) never ends: show what came within a few seconds.
    const timer = setTimeout(() => controller.abort(), 5000);
    options.signal = controller.signal;
    let text = "";
    try {
      const response = await Api.fetchAuth(url, options);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      out.textContent = `${response.status} ${response.statusText}\n`;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        if (text.length > 200000) break;
      }
    } catch (err) {
      if (err.name !== "AbortError") text += `\n(${err.message})`;
    } finally {
      clearTimeout(timer);
    }
    try {
      text = pretty(JSON.parse(text));
    } catch (err) { /* not JSON: shown as it came */ }
    out.textContent += text;
  }

  function operationBlock(path, method, pathItem, operation) {
    const params = parametersOf(pathItem, operation);
    const form = el("form", { class: "try" });
    for (const param of params) {
      form.append(el("label", {}, `${param.name} (${param.in}${param.required ? ", required" : ""}) `,
        el("input", { name: `p-${param.in}-${param.name}`, value: example(param), placeholder: param.description || "" })));
    }
    const media = operation.requestBody && operation.requestBody.content["application/json"];
    if (media) {
      form.append(el("label", {}, "body (JSON)"),
        el("textarea", { name: "body" }, media.example ? pretty(media.example) : ""));
    }
    const out = el("pre", { class: "schema answer" });
    form.append(el("button", { type: "submit" }, "Send"), out);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send(method, path, params, form, out);
    });
    const responses = Object.entries(operation.responses || {}).map(([code, answer]) => {
      const content = Object.entries(answer.content || {});
      return el("li", {}, el("b", {}, code), ` ${answer.description} `,
        content.map(([type, body]) => el("details", {}, el("summary", {}, type),
          el("pre", { class: "schema" }, pretty(resolve(body.schema))))));
    });
    return el("details", { class: "op", id: operation.operationId || `${method}-${path}` },
      el("summary", {}, el("span", { class: `verb ${method}` }, method.toUpperCase()),
        el("span", { class: "path" }, path), el("span", { class: "muted" }, operation.summary || "")),
      el("div", { class: "body" },
        operation.description ? el("p", {}, operation.description) : null,
        params.length ? el("h3", {}, "Parameters") : null,
        params.length ? el("ul", {}, params.map((p) => el("li", {}, el("code", {}, p.name),
          ` in ${p.in}${p.required ? ", required" : ""}: ${p.description || ""} `,
          el("code", {}, JSON.stringify(p.schema))))) : null,
        media ? el("h3", {}, "Request body") : null,
        media ? el("pre", { class: "schema" }, pretty(resolve(media.schema))) : null,
        el("h3", {}, "Responses"), el("ul", {}, responses),
        el("h3", {}, "Try it"), form));
  }

  function render() {
    const root = document.getElementById("docs");
    const byTag = new Map((spec.tags || []).map((t) => [t.name, []]));
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const method of ["get", "post", "put", "delete", "head"]) {
        if (!item[method]) continue;
        const tag = (item[method].tags || ["other"])[0];
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push(operationBlock(path, method, item, item[method]));
      }
    }
    const tagInfo = new Map((spec.tags || []).map((t) => [t.name, t.description]));
    root.replaceChildren(
      el("h1", {}, spec.info.title, " ", el("span", { class: "muted" }, `OpenAPI ${spec.openapi}`)),
      el("p", {}, spec.info.description || ""),
      ...[...byTag].map(([tag, blocks]) => el("section", {}, el("h2", {}, tag, " ",
        el("span", { class: "muted" }, tagInfo.get(tag) || "")), blocks)));
  }

  async function start() {
    const form = document.getElementById("login");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      Api.setToken(document.getElementById("token").value.trim());
    });
    const response = await fetch("/openapi.json");
    spec = await response.json();
    render();
  }

  document.addEventListener("DOMContentLoaded", start);
})();

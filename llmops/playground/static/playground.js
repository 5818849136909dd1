// llmops playground: pick a route, set sampling parameters, watch answers stream through the gateway.
// Plain browser JavaScript, no build step and nothing fetched from elsewhere: it talks to the gateway
// that served it (same origin), with the client key kept in this tab's sessionStorage only.
"use strict";

const KEY_STORE = "llmops-playground-key";
const MAX_COLUMNS = 5;
const $ = (id) => document.getElementById(id);
const state = { key: sessionStorage.getItem(KEY_STORE) || "", meta: null, controllers: [], answers: 1, preset: null, stopped: false };

function notice(text, bad = false) {
  const n = $("notice");
  n.textContent = text;
  n.classList.toggle("bad", bad);
}

function headers() {
  const h = { "Content-Type": "application/json" };
  if (state.key) h.Authorization = "Bearer " + state.key;
  return h;
}

function fmt(x) {
  return Number.isInteger(x) ? String(x) : String(Math.round(x * 1000) / 1000);
}

// ---- parameters: controls built from the server's own table (llmops.sampling) ----------------

function rangeText(p) {
  if (p.low !== null && p.high !== null) {
    return `in ${p.low_open ? "(" : "["}${p.low}, ${p.high}${p.high_open ? ")" : "]"}`;
  }
  if (p.low !== null) return `${p.low_open ? ">" : ">="} ${p.low}`;
  return p.kind === "int" ? "an integer" : "any value";
}

function check(p, raw) {
  // "" = not set; otherwise the typed value, or an Error saying what is wrong.
  const text = raw.trim();
  if (text === "") return "";
  if (p.kind === "list") {
    return text.split("|").map((s) => s.replace(/\\n/g, "\n")).filter((s) => s.length > 0);
  }
  const v = Number(text);
  if (!Number.isFinite(v)) return new Error(`${p.name} must be a number`);
  if (p.kind === "int" && !Number.isInteger(v)) return new Error(`${p.name} must be an integer`);
  const low = p.low !== null && (p.low_open ? v <= p.low : v < p.low);
  const high = p.high !== null && (p.high_open ? v >= p.high : v > p.high);
  if (low || high) return new Error(`${p.name} must be ${rangeText(p)}`);
  return v;
}

function buildParams() {
  const box = $("params");
  for (const p of state.meta.params) {
    const row = document.createElement("div");
    row.className = "param";
    const label = document.createElement("label");
    label.textContent = p.name;
    label.title = p.meaning;
    label.htmlFor = "p-" + p.name;
    const inputs = document.createElement("div");
    inputs.className = "inputs";
    const input = document.createElement("input");
    input.id = "p-" + p.name;
    input.type = p.kind === "list" ? "text" : "number";
    input.placeholder = p.kind === "list" ? "END | \\n\\n" : "default";
    input.title = `${p.meaning} (${rangeText(p)})`;
    if (p.kind !== "list") input.step = p.kind === "int" ? "1" : "0.05";
    inputs.append(input);
    if (p.slider) {
      const slider = document.createElement("input");
      slider.type = "range";
      slider.min = p.slider[0];
      slider.max = p.slider[1];
      slider.step = "0.01";
      slider.value = p.slider[0];
      slider.setAttribute("aria-label", p.name + " slider");
      slider.addEventListener("input", () => {
        input.value = slider.value;
        validate();
      });
      input.addEventListener("input", () => {
        if (input.value !== "") slider.value = input.value;
      });
      inputs.prepend(slider);
    }
    const why = document.createElement("div");
    why.className = "why";
    why.id = "why-" + p.name;
    input.addEventListener("input", () => {
      const chosen = state.meta.presets.find((x) => x.name === state.preset);
      if (chosen && p.name in chosen.values) markPreset(null); // the preset no longer describes the settings
      validate();
    });
    row.append(label, inputs, why);
    box.append(row);
  }
  const sel = $("compare-param");
  for (const name of state.meta.comparable) {
    const o = document.createElement("option");
    o.value = name;
    o.textContent = name;
    sel.append(o);
  }
}

function setValue(name, value) {
  const input = $("p-" + name);
  if (!input) return;
  input.value = value === undefined || value === null ? "" : Array.isArray(value) ? value.join(" | ") : value;
  input.dispatchEvent(new Event("input"));
}

function validate() {
  let ok = true;
  for (const p of state.meta.params) {
    const v = check(p, $("p-" + p.name).value);
    const bad = v instanceof Error;
    $("p-" + p.name).classList.toggle("invalid", bad);
    $("why-" + p.name).textContent = bad ? v.message : "";
    ok = ok && !bad;
  }
  $("run").disabled = !ok || state.controllers.length > 0;
  return ok;
}

function collect() {
  const out = {};
  for (const p of state.meta.params) {
    const v = check(p, $("p-" + p.name).value);
    if (v !== "" && !(v instanceof Error)) out[p.name] = v;
  }
  return out;
}

// ---- presets ---------------------------------------------------------------------------------

function markPreset(name) {
  state.preset = name;
  for (const b of $("presets").querySelectorAll("button")) b.classList.toggle("on", b.dataset.name === name);
  if (name === null) {
    state.answers = 1;
    $("preset-note").textContent = "";
  }
}

function buildPresets() {
  for (const pr of state.meta.presets) {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.name = pr.name;
    b.innerHTML = "";
    b.append(pr.name);
    const small = document.createElement("small");
    small.textContent = pr.task;
    b.append(small);
    b.title = pr.describe;
    b.addEventListener("click", () => {
      markPreset(null);
      for (const p of state.meta.params) if (p.name !== "max_tokens") setValue(p.name, pr.values[p.name]);
      markPreset(pr.name);
      state.answers = pr.n;
      $("preset-note").textContent =
        pr.describe + (pr.n > 1 ? ` · ${pr.n} candidates side by side` : "") + (pr.note ? ` · ${pr.note}` : "");
    });
    $("presets").append(b);
  }
}

// ---- routes and the client key ---------------------------------------------------------------

async function loadRoutes() {
  const sel = $("route");
  let res;
  try {
    res = await fetch("/v1/models", { headers: headers() });
  } catch (e) {
    notice("cannot reach the gateway: " + e.message, true);
    return;
  }
  if (res.status === 401 || res.status === 403) {
    notice("This gateway needs a client key: enter it above (kept in this tab only).", true);
    $("key").focus();
    return;
  }
  if (!res.ok) {
    notice(`GET /v1/models: HTTP ${res.status}`, true);
    return;
  }
  const doc = await res.json();
  const previous = sel.value;
  sel.replaceChildren();
  for (const m of doc.data || []) {
    const o = document.createElement("option");
    o.value = o.textContent = m.id;
    sel.append(o);
  }
  if (previous) sel.value = previous;
  const count = sel.options.length;
  const what = count === 1 ? "1 route" : `${count} routes`;
  notice(count ? what + (state.key ? " · key set for this tab" : "") : "this key may use no routes", !count);
  $("key-forget").hidden = !state.key;
}

function useKey() {
  state.key = $("key").value.trim();
  $("key").value = "";
  if (state.key) sessionStorage.setItem(KEY_STORE, state.key);
  loadRoutes();
}

function forgetKey() {
  state.key = "";
  sessionStorage.removeItem(KEY_STORE);
  loadRoutes();
}

// ---- running: one column per setting, each streaming on its own --------------------------------

function plans() {
  const base = collect();
  const param = $("compare-param").value;
  const raw = $("compare-values").value.trim();
  if (param && raw) {
    const values = raw.split(",").map((s) => s.trim()).filter(Boolean);
    if (values.length < 2 || values.length > 3) throw new Error("compare: give two or three values");
    return values.map((v) => {
      if (param === "preset") {
        const pr = state.meta.presets.find((x) => x.name === v);
        if (!pr) throw new Error(`compare: unknown preset '${v}'`);
        const params = { ...base };
        for (const p of state.meta.params) if (p.name !== "max_tokens") delete params[p.name];
        return { label: `preset=${v}`, params: { ...params, ...pr.values } };
      }
      const p = state.meta.params.find((x) => x.name === param);
      const value = check(p, v);
      if (value instanceof Error) throw new Error("compare: " + value.message);
      return { label: `${param}=${v}`, params: { ...base, [param]: value } };
    });
  }
  const label = Object.entries(base).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("|") : fmt(v)}`).join(", ") || "server defaults";
  const n = Math.min(state.answers, MAX_COLUMNS);
  return Array.from({ length: n }, (_, i) => ({ label: n > 1 ? `candidate ${i + 1} · ${label}` : label, params: base }));
}

async function run() {
  $("error").textContent = "";
  if (!validate()) return;
  const prompt = $("prompt").value;
  if (!prompt.trim()) {
    $("error").textContent = "write a prompt first";
    return;
  }
  if (!$("route").value) {
    $("error").textContent = "no route to send to";
    return;
  }
  let list;
  try {
    list = plans();
  } catch (e) {
    $("error").textContent = e.message;
    return;
  }
  const messages = [];
  if ($("system").value.trim()) messages.push({ role: "system", content: $("system").value });
  messages.push({ role: "user", content: prompt });
  const logprobs = $("logprobs").checked;
  $("legend").hidden = !logprobs;
  const box = $("columns");
  box.replaceChildren();
  $("run").disabled = true;
  $("stop").disabled = false;
  const jobs = list.map((plan) => {
    const col = $("column-tpl").content.firstElementChild.cloneNode(true);
    col.querySelector(".label").textContent = plan.label;
    col.querySelector(".live").textContent = "queued";
    box.append(col);
    const body = { model: $("route").value, messages, stream: true, stream_options: { include_usage: true }, ...plan.params };
    if (logprobs) {
      body.logprobs = true;
      body.top_logprobs = 3;
    }
    return [col, body];
  });
  // One after another: each column's time to first token and tokens/s are its own, not a queue's.
  state.stopped = false;
  for (const [col, body] of jobs) {
    if (state.stopped) {
      col.querySelector(".live").textContent = "not run (stopped)";
      col.dataset.state = "skipped";
      continue;
    }
    await stream(col, body);
  }
  state.controllers = [];
  $("stop").disabled = true;
  validate();
}

function stop() {
  state.stopped = true;
  for (const c of state.controllers) c.abort();
}

function bandOf(p) {
  if (p > state.meta.bands.high) return "automatic";
  if (p >= state.meta.bands.low) return "check";
  return "review";
}

async function stream(col, body) {
  const ctrl = new AbortController();
  state.controllers.push(ctrl);
  const live = col.querySelector(".live");
  const answer = col.querySelector(".answer");
  const meta = col.querySelector(".meta");
  const s = { t0: performance.now(), tFirst: null, tLast: null, pieces: 0, usage: null, finish: null, logprobs: [], done: false, error: null };

  const show = () => {
    const parts = [];
    if (s.tFirst !== null) parts.push(`TTFT ${Math.round(s.tFirst - s.t0)} ms`);
    const n = s.logprobs.length || s.pieces;
    if (n > 1 && s.tLast > s.tFirst) parts.push(`${((n - 1) / ((s.tLast - s.tFirst) / 1000)).toFixed(1)} tok/s`);
    parts.push(`${n} tokens`);
    live.textContent = parts.join(" · ");
  };
  const append = (text, toks) => {
    const joined = toks.map((t) => t.token).join("");
    if (toks.length && joined === text) {
      for (const t of toks) {
        const p = Math.exp(t.logprob);
        const span = document.createElement("span");
        span.className = "tok p-" + (p > 0.8 ? "high" : p >= 0.5 ? "mid" : "low");
        span.textContent = t.token;
        const alts = (t.top_logprobs || []).filter((a) => a.token !== t.token).map((a) => `${JSON.stringify(a.token)} ${Math.exp(a.logprob).toFixed(2)}`);
        span.title = `p = ${p.toFixed(3)}` + (alts.length ? `\nalternatives: ${alts.join(", ")}` : "");
        answer.append(span);
      }
    } else {
      answer.append(document.createTextNode(text));
    }
  };
  const handle = (ev) => {
    const data = ev.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, "")).join("\n");
    if (!data) return;
    if (data === "[DONE]") {
      s.done = true;
      return;
    }
    let doc;
    try {
      doc = JSON.parse(data);
    } catch {
      return;
    }
    if (doc.error) {
      s.error = doc.error.message || JSON.stringify(doc.error);
      return;
    }
    if (doc.usage) s.usage = doc.usage;
    const ch = (doc.choices || []).find((c) => (c.index || 0) === 0);
    if (!ch) return;
    const text = (ch.delta && ch.delta.content) || "";
    const toks = (ch.logprobs && ch.logprobs.content) || [];
    if (text || toks.length) {
      const now = performance.now();
      if (s.tFirst === null) s.tFirst = now;
      s.tLast = now;
      s.pieces += 1;
      s.logprobs.push(...toks);
      append(text, toks);
      show();
    }
    if (ch.finish_reason) s.finish = ch.finish_reason;
  };

  live.classList.add("streaming");
  live.textContent = "waiting for the first token…";
  let stopped = false;
  let res = null;
  try {
    res = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(body), signal: ctrl.signal });
    if (!res.ok) {
      let msg = await res.text();
      try {
        const j = JSON.parse(msg);
        msg = (j.error && j.error.message) || msg;
      } catch {
        /* not JSON: show it as it is */
      }
      s.error = `HTTP ${res.status}: ${msg}`;
      if (res.status === 401) notice("The gateway refused the key: enter a client key above.", true);
    } else {
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf = (buf + dec.decode(value, { stream: true })).replace(/\r\n/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          handle(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
      if (buf.trim()) handle(buf);
    }
  } catch (e) {
    if (e.name === "AbortError") stopped = true;
    else s.error = e.message;
  }
  live.classList.remove("streaming");
  const end = performance.now();
  show();
  const items = [];
  if (stopped) items.push(["bad", "stopped: the request was cancelled"]);
  if (s.error) items.push(["bad", s.error]);
  if (!stopped && !s.error && !s.done && !s.finish) items.push(["bad", "the stream ended without its end marker"]);
  if (s.finish) items.push(["", `finish: ${s.finish}`]);
  const out = s.usage ? s.usage.completion_tokens : s.logprobs.length || s.pieces;
  const inp = s.usage ? s.usage.prompt_tokens : "?";
  items.push(["", `tokens in ${inp} / out ${out}`]);
  items.push(["", `${((end - s.t0) / 1000).toFixed(2)} s`]);
  if (res) {
    for (const h of ["route", "deployment", "cache"]) {
      const v = res.headers.get("x-llmops-" + h);
      if (v) items.push(["", `${h} ${v}`]);
    }
  }
  if (s.logprobs.length) {
    const mean = s.logprobs.reduce((a, t) => a + t.logprob, 0) / s.logprobs.length;
    const c = Math.exp(mean);
    const band = bandOf(c);
    items.push([`band-${band}`, `confidence ${c.toFixed(3)} → ${band === "review" ? "human review" : band}`]);
  } else if (body.logprobs && !s.error && !stopped) {
    items.push(["bad", "this route returned no log-probabilities"]);
  }
  meta.replaceChildren(
    ...items.map(([cls, text]) => {
      const span = document.createElement("span");
      if (cls) span.className = cls;
      span.textContent = text;
      return span;
    }),
  );
  col.dataset.state = stopped ? "stopped" : s.error ? "error" : "done";
}

// ---- start ---------------------------------------------------------------------------------

async function main() {
  const res = await fetch("/playground/meta.json");
  state.meta = await res.json();
  buildParams();
  buildPresets();
  validate();
  $("run").addEventListener("click", run);
  $("stop").addEventListener("click", stop);
  $("clear").addEventListener("click", () => {
    for (const p of state.meta.params) setValue(p.name, "");
    markPreset(null);
  });
  $("key-save").addEventListener("click", useKey);
  $("key").addEventListener("keydown", (e) => e.key === "Enter" && useKey());
  $("key-forget").addEventListener("click", forgetKey);
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run();
  });
  await loadRoutes();
}

main();

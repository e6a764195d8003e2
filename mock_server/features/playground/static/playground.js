// The wavespeed-mock playground: plain JavaScript, no build step, no library.
// Everything it shows comes from the server: the models and their request
// schemas (GET /api/v3/models), the tasks (GET /_mock/predictions, and the
// API's own result route), and the control API. Nothing is written with
// innerHTML: text from the server goes in as text.

const CONTROL = "/_mock";
const STORE = { key: "wavespeed-mock.api-key", token: "wavespeed-mock.control-token" };
const POLL_MS = 700;
const $ = (selector) => document.querySelector(selector);

// -- small helpers ---------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function clockTime(seconds) {
  const d = new Date(seconds * 1000);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function banner(text) {
  const node = $("#banner");
  node.textContent = text;
  node.hidden = !text;
}

// -- the API key and control token, kept in this browser ---------------------------

function apiKey() { return $("#api-key").value.trim(); }
function controlToken() { return $("#control-token").value.trim(); }

function keepInBrowser(input, name, fallback) {
  input.value = localStorage.getItem(name) ?? fallback;
  input.addEventListener("input", () => {
    localStorage.setItem(name, input.value);
    refreshAfterKeyChange();
  });
}

// -- calling the server -----------------------------------------------------------

// One call; answers {status, body} with the JSON body (or null). API routes get
// the Bearer key; control routes get the control token when one is set, and
// always send their bodies as JSON (the control API refuses anything else).
async function call(path, { method = "GET", body, control = false, form } = {}) {
  const headers = {};
  const secret = control ? controlToken() : apiKey();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  let payload;
  if (form) payload = form;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, cache: "no-store" });
  } catch (error) {
    return { status: 0, body: { message: `The server did not answer: ${error.message}` } };
  }
  let parsed = null;
  if ((response.headers.get("content-type") || "").startsWith("application/json")) {
    parsed = await response.json();
  }
  if (response.status === 401 && control) {
    banner("The control API needs its token: fill in 'Control token' above.");
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

// -- 1. submit: a form made from the model's request schema ------------------------

const state = {
  models: [],            // GET /api/v3/models items
  model: null,
  fields: new Map(),     // name -> {schema, read(), input}
  tasks: new Map(),      // id -> {item, changes: [{status, at}]}
  mine: new Set(),       // ids the API key above can see (its history)
  selected: null,
  selectedView: null,
};

function requestSchema(model) {
  return model.api_schema.api_schemas[0].request_schema;
}

function needsFile(model) {
  const schema = requestSchema(model);
  return (schema.required || []).some((name) => fileKind(name, schema.properties[name] || {}));
}

function submitUrl(model) {
  const entry = model.api_schema.api_schemas[0];
  return `${entry.server}${entry.api_path}`;
}

// A file input, as the live catalogue marks it (x-ui-component uploader, or
// uploaders for a list; x-accept the media types), else a field named for an image.
function fileKind(name, schema) {
  const ui = schema["x-ui-component"];
  if (ui === "uploader" || ui === "uploaders") return schema["x-accept"] || "*/*";
  return /image/i.test(name) && (schema.type === "string" || schema.anyOf) ? "image/*" : null;
}

function errorSlot(name) {
  return el("p", { class: "error", "data-error-for": `$.${name}`, role: "alert" });
}

function buildField(name, schema, required) {
  const id = `field-${name}`;
  const label = el("label", { for: id, class: "field-name" }, name, required ? el("span", { class: "req", title: "required", text: " *" }) : null);
  const help = schema.description ? el("p", { class: "help", text: schema.description }) : null;
  const wrap = el("div", { class: "field", "data-field": name }, label);
  let input;
  let read;

  const accept = fileKind(name, schema);
  if (accept) {
    input = el("input", { id, type: "url", name, placeholder: "https://… or pick / drop a file", spellcheck: "false" });
    if (schema.maxLength) input.maxLength = schema.maxLength;
    const file = el("input", { type: "file", accept, id: `${id}-file`, "aria-label": `${name} file` });
    const preview = el("img", { class: "preview", alt: "", hidden: true });
    const note = el("span", { class: "muted", role: "status" });
    const drop = el("div", { class: "drop", "data-drop-for": name },
      el("span", { text: "Drop a file here, or " }), file, note);
    const take = (picked) => uploadImage(picked, input, preview, note);
    file.addEventListener("change", () => file.files[0] && take(file.files[0]));
    drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      const picked = event.dataTransfer.files[0];
      if (picked) take(picked);
      else {
        const url = event.dataTransfer.getData("text/uri-list") || event.dataTransfer.getData("text/plain");
        if (url) { input.value = url.trim(); updateCode(); }
      }
    });
    wrap.append(input, drop, preview);
    const list = schema.type === "array" || schema["x-ui-component"] === "uploaders";
    read = () => {
      const url = input.value.trim();
      if (url === "") return required ? url : undefined;
      return list ? [url] : url;
    };
  } else if (schema.enum) {
    input = el("select", { id, name });
    if (!required) input.append(el("option", { value: "", text: "(not sent)" }));
    for (const option of schema.enum) input.append(el("option", { value: option, text: String(option) }));
    if (schema.default !== undefined) input.value = String(schema.default);
    wrap.append(input);
    read = () => (input.value === "" ? undefined : schema.enum.find((v) => String(v) === input.value));
  } else if (schema.type === "boolean") {
    input = el("input", { id, name, type: "checkbox" });
    input.checked = schema.default === true;
    label.classList.add("check");
    label.prepend(input);
    read = () => (input.checked === (schema.default === true) && !required ? undefined : input.checked);
  } else if (schema.type === "integer" || schema.type === "number") {
    input = el("input", { id, name, type: "number", step: schema.type === "integer" ? 1 : "any", min: schema.minimum, max: schema.maximum });
    if (schema.default !== undefined) input.value = String(schema.default);
    wrap.append(input);
    // The API's random-seed value: the contract names it; the live catalogue's
    // seed fields show it as their minimum (-1).
    const random = schema["x-random-seed"] ?? (name === "seed" && schema.minimum === -1 ? -1 : undefined);
    if (random !== undefined) {
      wrap.append(el("button", { type: "button", class: "small", "data-random": name, text: `random (${random})`, onclick: () => { input.value = String(random); updateCode(); } }));
    }
    if (schema.minimum !== undefined || schema.maximum !== undefined) {
      wrap.append(el("span", { class: "muted", text: ` ${schema.minimum ?? "…"} to ${schema.maximum ?? "…"}` }));
    }
    read = () => {
      const text = input.value.trim();
      if (text === "") return undefined;
      const value = Number(text);
      return Number.isFinite(value) ? value : text; // the server says what is wrong
    };
  } else {
    const long = name === "prompt" || (schema.maxLength ?? 0) > 200;
    input = long ? el("textarea", { id, name, rows: 4, spellcheck: "false" }) : el("input", { id, name, type: "text" });
    if (schema.maxLength) input.maxLength = schema.maxLength;
    if (schema.default !== undefined) input.value = String(schema.default);
    wrap.append(input);
    // The prompt's tags, as the contract's description names them.
    const tags = [["<S>", "<E>", "speech"], ["<AUDCAP>", "<ENDAUDCAP>", "audio caption"]]
      .filter(([open]) => (schema.description || "").includes(open));
    if (tags.length) {
      const bar = el("div", { class: "tag-buttons" });
      for (const [open, close, what] of tags) {
        bar.append(el("button", { type: "button", class: "small", title: `insert ${what}`, text: `${open}…${close}`, onclick: () => insertTag(input, open, close) }));
      }
      wrap.append(bar);
    }
    if (schema.minLength || schema.maxLength) {
      wrap.append(el("span", { class: "muted", text: `${schema.minLength ?? 0} to ${schema.maxLength ?? "…"} characters` }));
    }
    read = () => (input.value === "" && !required ? undefined : input.value);
  }
  if (required) input.required = true;
  input.addEventListener("input", updateCode);
  input.addEventListener("change", updateCode);
  if (help) wrap.append(help);
  wrap.append(errorSlot(name));
  state.fields.set(name, { schema, read, input });
  return wrap;
}

function insertTag(area, open, close) {
  const start = area.selectionStart ?? area.value.length;
  const end = area.selectionEnd ?? area.value.length;
  const inside = area.value.slice(start, end);
  area.value = area.value.slice(0, start) + open + inside + close + area.value.slice(end);
  const caret = start + open.length + inside.length;
  area.focus();
  area.setSelectionRange(caret, caret);
  updateCode();
}

// A file goes through the API's own upload route (not a data: URI): the request
// then carries a short URL, exactly what the real API takes, the curl and SDK
// code beside it stay readable, and strict mode (no data: URIs) accepts it.
async function uploadImage(file, input, preview, note) {
  note.textContent = ` uploading ${file.name}…`;
  const form = new FormData();
  form.append("file", file, file.name);
  const { status, body } = await call("/api/v3/media/upload/binary", { method: "POST", form });
  if (status !== 200) {
    note.textContent = ` upload refused (${status}): ${body?.message ?? "no answer"}`;
    return;
  }
  input.value = body.data.download_url;
  note.textContent = ` uploaded ${file.name} (${body.data.size.toLocaleString()} bytes)`;
  preview.src = body.data.download_url;
  preview.hidden = false;
  updateCode();
}

function renderForm(model) {
  state.model = model;
  state.fields.clear();
  const schema = requestSchema(model);
  const required = new Set(schema.required || []);
  // Fields the live UI does not offer (API-only switches marked disabled,
  // hidden ones) are not offered here either.
  const order = (schema["x-order-properties"] || Object.keys(schema.properties))
    .filter((name) => schema.properties[name] && !schema.properties[name].disabled && !schema.properties[name]["x-hidden"]);
  const fields = $("#fields");
  fields.replaceChildren(...order.map((name) => buildField(name, schema.properties[name], required.has(name))));
  $("#model-description").textContent = `${model.description} ${model.base_price} USD a run.`;
  clearErrors();
  updateCode();
}

function requestBody() {
  const body = {};
  for (const [name, field] of state.fields) {
    const value = field.read();
    if (value !== undefined) body[name] = value;
  }
  return body;
}

function webhookUrl() {
  return $("#use-inbox").checked ? `${location.origin}/playground/inbox` : null;
}

// -- the same request as curl and as an official-SDK call ----------------------------

function shellQuote(text) {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

function pyLiteral(value, indent = "") {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return JSON.stringify(value); // a valid Python str literal
  if (Array.isArray(value)) return `[${value.map((v) => pyLiteral(v, indent)).join(", ")}]`;
  const inner = indent + "    ";
  const items = Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${pyLiteral(v, inner)},`);
  return items.length ? `{\n${items.join("\n")}\n${indent}}` : "{}";
}

function updateCode() {
  if (!state.model) return;
  const body = requestBody();
  const hook = webhookUrl();
  const url = submitUrl(state.model) + (hook ? `?webhook=${encodeURIComponent(hook)}` : "");
  $("#curl-code").textContent = [
    `curl -X POST ${shellQuote(url)} \\`,
    `  -H ${shellQuote(`Authorization: Bearer ${apiKey()}`)} \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -d ${shellQuote(JSON.stringify(body))}`,
  ].join("\n");
  const base = new URL(submitUrl(state.model)).origin;
  // The SDK takes sync mode as an argument and sends the field itself.
  const { enable_sync_mode: sync, ...input } = body;
  const lines = [
    "import wavespeed",
    "",
    `client = wavespeed.Client(api_key=${pyLiteral(apiKey())}, base_url=${pyLiteral(base)})`,
    `output = client.run(`,
    `    ${pyLiteral(state.model.model_id)},`,
    `    ${pyLiteral(input, "    ")},`,
  ];
  if (sync) lines.push("    enable_sync_mode=True,");
  lines.push(")", 'print(output["outputs"][0])');
  if (hook) lines.push("# The SDK's run() sends no webhook; the curl form above does (?webhook=).");
  $("#sdk-code").textContent = lines.join("\n");
}

// -- a 400 shown at the field it names -------------------------------------------------

function clearErrors(scope = document) {
  for (const slot of scope.querySelectorAll("[data-error-for]")) slot.textContent = "";
  for (const input of scope.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

// "Invalid request body: $.seed: -2 is less than the minimum of -1; $.prompt: …"
function fieldErrors(message) {
  const found = [];
  const pattern = /(\$(?:\.[A-Za-z0-9_-]+|\[\d+\])*):\s*(.*?)(?=;\s*\$[.\[:]|;\s*and \d+ more|$)/g;
  const text = message.replace(/^[^$]*?:\s*(?=\$)/, "");
  for (const match of text.matchAll(pattern)) found.push({ path: match[1], text: match[2] });
  return found;
}

function showErrors(message, scope = $("#submit-form")) {
  const general = scope.querySelector('[data-error-for="$"]');
  let placed = false;
  for (const { path, text } of fieldErrors(message)) {
    const name = path.split(/[.\[]/)[1];
    const slot = name && scope.querySelector(`[data-error-for="$.${CSS.escape(name)}"]`);
    if (slot) {
      slot.textContent = `${path}: ${text}`;
      state.fields.get(name)?.input.setAttribute("aria-invalid", "true");
      placed = true;
    }
  }
  if (!placed && general) general.textContent = message;
}

async function submit(event) {
  event.preventDefault();
  clearErrors($("#submit-form"));
  const status = $("#submit-status");
  status.textContent = "submitting…";
  const hook = webhookUrl();
  const path = state.model.api_schema.api_schemas[0].api_path + (hook ? `?webhook=${encodeURIComponent(hook)}` : "");
  const answer = await call(path, { method: "POST", body: requestBody() });
  if (answer.status !== 200) {
    status.textContent = `HTTP ${answer.status}`;
    showErrors(answer.body?.message ?? `HTTP ${answer.status}`);
    return;
  }
  const data = answer.body.data;
  status.textContent = `accepted: ${data.id} (${data.status})`;
  state.mine.add(data.id);
  noteStatus(data.id, { id: data.id, model: data.model, status: data.status, created_at: data.created_at });
  select(data.id);
  pollTasks();
}

// -- 2. watch: every task, its status changes and when they were seen -------------------

function noteStatus(id, item) {
  let task = state.tasks.get(id);
  if (!task) {
    task = { item, changes: [] };
    state.tasks.set(id, task);
    // A task made before the page opened starts at its own created_at, not at
    // the moment this page first saw it.
    const created = Date.parse(item.created_at ?? "") / 1000;
    if (Number.isFinite(created) && item.status !== "created") {
      task.changes.push({ status: "created", at: created });
    }
  }
  task.item = { ...task.item, ...item };
  const last = task.changes.at(-1);
  if (!last || last.status !== item.status) {
    task.changes.push({ status: item.status, at: Date.now() / 1000 });
    return true;
  }
  return false;
}

let polling = false;

async function pollTasks() {
  if (polling) return;
  polling = true;
  try {
    await pollTasksOnce();
  } finally {
    polling = false;
  }
}

async function pollTasksOnce() {
  const answer = await call(`${CONTROL}/predictions`, { control: true });
  if (answer.status !== 200) return;
  if ($("#filter-key").value === "mine") await loadMine();
  const seen = new Set();
  for (const item of answer.body.data.items) {
    seen.add(item.id);
    noteStatus(item.id, item);
  }
  for (const id of [...state.tasks.keys()]) if (!seen.has(id)) state.tasks.delete(id); // reset
  renderTasks();
  if (state.selected && state.tasks.has(state.selected)) refreshSelected();
}

async function loadMine() {
  const answer = await call("/api/v3/predictions", { method: "POST", body: { page_size: 100 } });
  state.mine = new Set(answer.status === 200 ? answer.body.data.items.map((p) => p.id) : []);
}

function renderTasks() {
  const wanted = $("#filter-status").value;
  const onlyMine = $("#filter-key").value === "mine";
  const statuses = new Set();
  const rows = [];
  const tasks = [...state.tasks.values()].reverse().slice(0, 200);
  for (const { item, changes } of tasks) {
    statuses.add(item.status);
    if (wanted && item.status !== wanted) continue;
    if (onlyMine && !state.mine.has(item.id)) continue;
    const start = changes[0].at;
    const timeline = changes.map((c, i) => `${c.status}${i ? ` +${(c.at - start).toFixed(1)}s` : ` ${clockTime(c.at)}`}`).join(" → ");
    rows.push(el("tr", { "data-task": item.id, "data-status": item.status, class: item.id === state.selected ? "selected" : null, onclick: () => select(item.id) },
      el("td", {}, el("code", { text: item.id.slice(0, 12) })),
      el("td", { text: item.model.split("/").at(-1) }),
      el("td", {}, el("span", { class: `status s-${item.status}`, text: item.status })),
      el("td", { class: "muted", text: timeline })));
  }
  $("#task-rows").replaceChildren(...rows);
  $("#tasks-empty").hidden = rows.length > 0;
  const filter = $("#filter-status");
  const known = new Set([...filter.options].map((o) => o.value));
  for (const status of statuses) if (!known.has(status)) filter.append(el("option", { value: status, text: status }));
}

// -- 3. play: the clip, its facts, a download link ---------------------------------------

function select(id) {
  if (state.selected !== id) {
    state.selected = id;
    state.selectedView = null;
    const video = $("#video");
    video.removeAttribute("src");
    video.load();
    video.hidden = true;
    $("#download").removeAttribute("href");
    $("#download").hidden = true;
    $("#facts").replaceChildren();
  }
  $("#player").hidden = false;
  $("#play-empty").hidden = true;
  $("#play-id").textContent = id;
  renderTasks();
  refreshSelected();
}

async function refreshSelected() {
  const id = state.selected;
  if (state.selectedView && ["completed", "failed"].includes(state.selectedView.status)) return;
  const answer = await call(`/api/v3/predictions/${encodeURIComponent(id)}/result`);
  if (id !== state.selected) return;
  if (answer.status !== 200) {
    $("#play-status").textContent = `not visible to the API key above (HTTP ${answer.status})`;
    return;
  }
  const view = answer.body.data;
  state.selectedView = view;
  $("#play-status").textContent = view.status;
  $("#play-status").dataset.status = view.status;
  $("#play-error").textContent = view.error ? `${view.code ? `code ${view.code}: ` : ""}${view.error}` : "";
  $("#play-error").dataset.code = view.code ?? "";
  if (view.status === "completed" && view.outputs.length) showClip(view);
}

function showClip(view) {
  const url = view.outputs[0];
  const video = $("#video");
  video.hidden = false;
  $("#download").hidden = false;
  if (video.getAttribute("src") !== url) {
    video.src = url;
    $("#download").href = url;
    $("#download").setAttribute("download", `${view.id}.mp4`);
  }
  renderFacts(view);
  fetch(url, { cache: "no-store" }).then((r) => r.arrayBuffer()).then((buffer) => {
    view.bytes = buffer.byteLength;
    view.timing = mp4VideoTiming(buffer);
    renderFacts(view);
  });
}

// The clip's frame rate and frame count, read from the MP4 itself: the video
// track's time scale (mdhd) and sample durations (stts). Two boxes: a few lines
// here rather than a vendored MP4 library (mp4box.js is some 200 kB).
function mp4VideoTiming(buffer) {
  const view = new DataView(buffer);
  const type = (at) => String.fromCharCode(...new Uint8Array(buffer, at + 4, 4));
  function* boxes(start, end) {
    for (let at = start; at + 8 <= end;) {
      let size = view.getUint32(at);
      let header = 8;
      if (size === 1) { size = Number(view.getBigUint64(at + 8)); header = 16; }
      else if (size === 0) size = end - at;
      if (size < header || at + size > end) return;
      yield { type: type(at), body: at + header, end: at + size };
      at += size;
    }
  }
  const child = (box, name) => box && [...boxes(box.body, box.end)].find((b) => b.type === name);
  const moov = [...boxes(0, buffer.byteLength)].find((b) => b.type === "moov");
  for (const trak of moov ? boxes(moov.body, moov.end) : []) {
    if (trak.type !== "trak") continue;
    const mdia = child(trak, "mdia");
    const hdlr = child(mdia, "hdlr");
    if (!hdlr || type(hdlr.body + 4) !== "vide") continue; // version, flags, pre_defined, handler
    const mdhd = child(mdia, "mdhd");
    const timescale = view.getUint32(mdhd.body + (view.getUint8(mdhd.body) === 1 ? 20 : 12));
    const stts = child(child(child(mdia, "minf"), "stbl"), "stts");
    let frames = 0;
    let ticks = 0;
    for (let i = 0, n = view.getUint32(stts.body + 4); i < n; i++) {
      const count = view.getUint32(stts.body + 8 + i * 8);
      frames += count;
      ticks += count * view.getUint32(stts.body + 12 + i * 8);
    }
    return { frames, fps: ticks ? (frames * timescale) / ticks : null };
  }
  return null;
}

function renderFacts(view) {
  if (!view) return;
  const video = $("#video");
  const seed = state.tasks.get(view.id)?.item.seed;
  // Where and when it rendered (GET /_mock/predictions: the process, the GPU).
  const render = state.tasks.get(view.id)?.item.render;
  const ranOn = render?.worker ? render.worker + (render.device ? ` (${render.device})` : "") : "…";
  const timing = view.timing;
  const facts = [
    ["size", video.videoWidth ? `${video.videoWidth} × ${video.videoHeight}` : "…"],
    ["duration", Number.isFinite(video.duration) ? `${video.duration.toFixed(2)} s` : "…"],
    ["fps", timing ? `${timing.fps.toFixed(1)} (${timing.frames} frames)` : "…"],
    ["seed", seed ?? "…"],
    ["bytes", view.bytes ? view.bytes.toLocaleString() : "…"],
    ["inference", `${view.executionTime} ms`],
    ["ran on", ranOn],
    ["attempts", render ? render.attempts : "…"],
    ["render", render?.render_ms != null ? `${render.render_ms} ms, queued ${render.queued_ms} ms` : "…"],
  ];
  $("#facts").replaceChildren(...facts.flatMap(([name, value]) => [el("dt", { text: name }), el("dd", { "data-fact": name, text: String(value) })]));
}

// -- 4. inspect and control ----------------------------------------------------------------

const tabs = {
  async journal() {
    const answer = await call(`${CONTROL}/journal`, { control: true });
    if (answer.status !== 200) return;
    const items = answer.body.data.items.slice(-100).reverse();
    $("#journal-rows").replaceChildren(...items.map((e) => el("tr", {},
      el("td", { text: clockTime(e.at) }), el("td", { text: e.method }),
      el("td", {}, el("code", { text: e.path + (e.query ? `?${e.query}` : "") })),
      el("td", { text: e.status }), el("td", { text: [e.client_name, e.client_version].filter(Boolean).join(" ") }))));
  },
  async webhooks() {
    const [inbox, attempts] = await Promise.all([
      call(`${CONTROL}/playground/inbox`, { control: true }),
      call(`${CONTROL}/webhooks`, { control: true }),
    ]);
    if (inbox.status === 200) {
      $("#inbox-rows").replaceChildren(...inbox.body.data.items.slice().reverse().map((e) => el("tr", {},
        el("td", { text: clockTime(e.received_at) }), el("td", {}, el("code", { text: e.prediction_id ?? "?" })),
        el("td", { text: e.status ?? "?" }),
        el("td", { class: e.verdict === "valid" ? "ok" : "bad", "data-verdict": e.verdict, text: e.verdict }))));
    }
    if (attempts.status === 200) {
      $("#attempt-rows").replaceChildren(...attempts.body.data.items.slice().reverse().map((a) => el("tr", {},
        el("td", {}, el("code", { text: a.prediction_id })), el("td", {}, el("code", { text: a.url })),
        el("td", { text: a.attempt }), el("td", { text: a.status_code ?? "none" }), el("td", { text: a.error ?? "" }))));
    }
  },
  async account() {
    const [balance, ledger] = await Promise.all([call("/api/v3/balance"), call(`${CONTROL}/ledger`, { control: true })]);
    $("#balance").textContent = balance.status === 200 ? `${balance.body.data.balance} ${balance.body.data.currency}` : `HTTP ${balance.status}`;
    if (ledger.status === 200) {
      $("#ledger-rows").replaceChildren(...ledger.body.data.items.map((i) => el("tr", {},
        el("td", {}, el("code", { text: i.api_key })), el("td", { text: i.spent }), el("td", { text: i.balance ?? "unlimited" }))));
    }
  },
  async timing() {
    const answer = await call(`${CONTROL}/state`, { control: true });
    if (answer.status !== 200) return;
    const data = answer.body.data;
    if (document.activeElement !== $("#profile")) $("#profile").value = data.profile;
    $("#clock-kind").textContent = data.clock.virtual ? "virtual (frozen)" : "real";
    $("#clock-now").textContent = data.clock.now_iso;
  },
  async scenarios() {
    const answer = await call(`${CONTROL}/scenarios`, { control: true });
    if (answer.status === 200) $("#scenario-list").textContent = JSON.stringify(answer.body.data.scenarios, null, 2);
  },
  async outputs() {
    const answer = await call(`${CONTROL}/outputs`, { control: true });
    if (answer.status === 200) $("#outputs-list").textContent = JSON.stringify(answer.body.data.rules, null, 2);
  },
};

// The custom-output rule the form describes: the file (base64, its format from
// its name) or the URLs, the match and the count; null after showing an error.
async function outputsRule() {
  const error = $('[data-error-for="outputs"]');
  const body = { model: $("#outputs-model").value };
  const file = $("#outputs-file").files[0];
  const urls = $("#outputs-urls").value.split("\n").map((u) => u.trim()).filter(Boolean);
  if (file) {
    const format = (file.name.split(".").pop() || "").toLowerCase();
    const dataUrl = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
    body.outputs = [{ base64: String(dataUrl).split(",", 2)[1] ?? "", format }];
  } else if (urls.length) {
    body.outputs = urls.map((url) => ({ url }));
  } else {
    error.textContent = "Pick a file or give a URL.";
    return null;
  }
  const match = $("#outputs-match").value.trim();
  if (match) {
    try {
      body.match = JSON.parse(match);
    } catch (problem) {
      error.textContent = `The match is not JSON: ${problem.message}`;
      return null;
    }
  }
  if ($("#outputs-times").value) body.times = Number($("#outputs-times").value);
  return body;
}

function activeTab() {
  return $('[role="tab"][aria-selected="true"]').dataset.tab;
}

function showTab(name) {
  for (const tab of document.querySelectorAll('[role="tab"]')) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== name;
  tabs[name]();
}

async function control(path, body, errorScope) {
  clearErrors(errorScope);
  const answer = await call(`${CONTROL}${path}`, { method: body === undefined ? "DELETE" : "POST", body, control: true });
  if (answer.status !== 200) {
    const message = answer.body?.message ?? `HTTP ${answer.status}`;
    const slot = errorScope.querySelector("[data-error-for]");
    const placed = fieldErrors(message).find((e) => errorScope.querySelector(`[data-error-for="${CSS.escape(e.path)}"]`));
    (placed ? errorScope.querySelector(`[data-error-for="${CSS.escape(placed.path)}"]`) : slot).textContent = message;
  }
  tabs[activeTab()]();
  return answer;
}

function wireControls() {
  for (const tab of document.querySelectorAll('[role="tab"]')) tab.addEventListener("click", () => showTab(tab.dataset.tab));
  $("#profile-form").addEventListener("submit", (event) => {
    event.preventDefault();
    control("/profile", { profile: $("#profile").value.trim() }, $("#profile-form"));
  });
  $("#clock-freeze").addEventListener("click", () => control("/clock", { virtual: true }, $("#clock-form")));
  $("#clock-real").addEventListener("click", () => control("/clock", { virtual: false }, $("#clock-form")));
  $("#clock-form").addEventListener("submit", (event) => {
    event.preventDefault();
    control("/clock", { advance: Number($("#clock-advance").value) }, $("#clock-form"));
  });
  $("#scenario-preset").addEventListener("change", () => {
    if ($("#scenario-preset").value) $("#scenario-json").value = $("#scenario-preset").value;
  });
  $("#scenario-form").addEventListener("submit", (event) => {
    event.preventDefault();
    let body;
    try {
      body = JSON.parse($("#scenario-json").value);
    } catch (error) {
      $('[data-error-for="scenario"]').textContent = `Not JSON: ${error.message}`;
      return;
    }
    control("/scenarios", body, $("#scenario-form"));
  });
  $("#scenario-clear").addEventListener("click", () => control("/scenarios", undefined, $("#scenario-form")));
  $("#outputs-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors($("#outputs-form"));
    const rule = await outputsRule();
    if (rule) control("/outputs", rule, $("#outputs-form"));
  });
  $("#outputs-clear").addEventListener("click", () => control("/outputs", undefined, $("#outputs-form")));
}

// -- start ---------------------------------------------------------------------------------

async function loadModels() {
  const answer = await call("/api/v3/models");
  if (answer.status !== 200) {
    banner(`Could not list the models (HTTP ${answer.status}): ${answer.body?.message ?? ""} Check the API key.`);
    return;
  }
  banner("");
  state.models = answer.body.data;
  const picker = $("#model");
  const chosen = picker.value;
  picker.replaceChildren(...state.models.map((m) => el("option", { value: m.model_id, text: m.model_id })));
  const outputsPicker = $("#outputs-model");
  const outputsChosen = outputsPicker.value;
  outputsPicker.replaceChildren(...state.models.map((m) => el("option", { value: m.model_id, text: m.model_id })));
  if (outputsChosen) outputsPicker.value = outputsChosen;
  // First visit: the first model a prompt alone can run (no file to pick first).
  picker.value = chosen || (state.models.find((m) => !needsFile(m)) ?? state.models[0]).model_id;
  renderForm(state.models.find((m) => m.model_id === picker.value) ?? state.models[0]);
}

function refreshAfterKeyChange() {
  if (!state.models.length) loadModels();
  updateCode();
}

function start() {
  keepInBrowser($("#api-key"), STORE.key, "test-key");
  keepInBrowser($("#control-token"), STORE.token, "");
  $("#model").addEventListener("change", () => renderForm(state.models.find((m) => m.model_id === $("#model").value)));
  $("#submit-form").addEventListener("submit", submit);
  $("#use-inbox").addEventListener("change", updateCode);
  $("#filter-status").addEventListener("change", renderTasks);
  $("#filter-key").addEventListener("change", pollTasks);
  $("#video").addEventListener("loadedmetadata", () => renderFacts(state.selectedView));
  wireControls();
  loadModels();
  pollTasks();
  showTab("journal");
  setInterval(pollTasks, POLL_MS);
  setInterval(() => tabs[activeTab()](), 2000);
  document.body.dataset.ready = "true";
}

start();

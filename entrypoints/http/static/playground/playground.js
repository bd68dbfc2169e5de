// Switchyard playground: plain JavaScript, no build step. It calls the public API like any client would.
//
// Chat streams with fetch + an SSE parser (POST /api/v1/chat with stream: true). The answer in progress is kept in
// sessionStorage together with its stream id and the seq of the last event it includes, updated on every event, so a
// reload resumes the same stream after that seq (GET /api/v1/streams/{id}/events with Last-Event-ID) without losing
// or repeating text. Stop cancels the stream on the server (POST /api/v1/streams/{id}/cancel).
"use strict";

(() => {
  const TOKEN_KEY = "switchyard.playground.token";
  const STATE_KEY = "switchyard.playground.chat";
  const MAX_RAW_EVENTS = 500;
  const $ = (id) => document.getElementById(id);

  // --- state -------------------------------------------------------------------------------------------------------
  let token = sessionStorage.getItem(TOKEN_KEY) || "";
  let chat = loadChat();
  let reader = null; // the AbortController of the response being read

  function loadChat() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(STATE_KEY) || "null");
      if (saved && Array.isArray(saved.messages)) return saved;
    } catch (_) { /* a corrupt entry starts a new chat */ }
    return { model: "", messages: [], pending: null };
  }

  function saveChat() {
    sessionStorage.setItem(STATE_KEY, JSON.stringify(chat));
  }

  // --- the API -------------------------------------------------------------------------------------------------------
  function headers(extra) {
    const all = Object.assign({}, extra || {});
    if (token) all.Authorization = "Bearer " + token;
    return all;
  }

  async function failure(response) {
    try {
      const body = await response.json();
      return new Error((body.data && body.data.error ? body.data.error + ": " : "") + (body.message || response.status));
    } catch (_) {
      return new Error("HTTP " + response.status);
    }
  }

  async function api(path, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = headers(opts.headers);
    const response = await fetch(path, opts);
    if (!response.ok) throw await failure(response);
    return response.json();
  }

  // Server-Sent Events from a fetch body: frames end with a blank line; `data:` lines join; comments are skipped.
  async function readEvents(response, onEvent, signal) {
    const decoder = new TextDecoder();
    const source = response.body.getReader();
    let buffer = "";
    const abort = () => source.cancel().catch(() => {});
    signal.addEventListener("abort", abort);
    try {
      for (;;) {
        const { value, done } = await source.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = parseFrame(frame);
          if (event) onEvent(event);
        }
      }
    } finally {
      signal.removeEventListener("abort", abort);
    }
  }

  function parseFrame(frame) {
    let type = "message";
    const data = [];
    for (const line of frame.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return null;
    const message = JSON.parse(data.join("\n"));
    return Object.assign({ type }, message);
  }

  // --- sign in ---------------------------------------------------------------------------------------------------
  function setToken(value) {
    token = value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    $("token").value = "";
    $("sign-out").hidden = !token;
    return start();
  }

  async function offerDevToken() {
    try {
      const response = await fetch("/playground/dev-token");
      if (!response.ok) return;
      const body = await response.json();
      const button = $("dev-token");
      button.hidden = false;
      button.onclick = () => setToken(body.data.token);
    } catch (_) { /* not offered */ }
  }

  function say(id, text, bad) {
    const element = $(id);
    element.textContent = text;
    element.classList.toggle("bad", !!bad);
  }

  // --- models ----------------------------------------------------------------------------------------------------
  async function fillModels(select, capability, preferred) {
    const body = await api("/api/v1/models?capability=" + encodeURIComponent(capability));
    select.replaceChildren();
    for (const model of body.data.models) {
      const option = document.createElement("option");
      option.value = option.textContent = model.id;
      select.append(option);
    }
    if (preferred && [...select.options].some((o) => o.value === preferred)) select.value = preferred;
  }

  // --- chat ------------------------------------------------------------------------------------------------------
  function bubble(role, text, state, note) {
    const element = document.createElement("div");
    element.className = "message " + role;
    if (state) element.dataset.state = state;
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    element.append(body);
    if (note) {
      const small = document.createElement("span");
      small.className = "note";
      small.textContent = note;
      element.append(small);
    }
    return element;
  }

  function render() {
    const transcript = $("transcript");
    transcript.replaceChildren(...chat.messages.map((m) => bubble(m.role, m.content, m.state || "done", m.note)));
    if (chat.pending) {
      const answer = bubble("assistant", chat.pending.text, "streaming");
      answer.id = "answer";
      answer.dataset.streamId = chat.pending.stream_id;
      transcript.append(answer);
    }
    const busy = !!chat.pending;
    $("send").disabled = busy || !token;
    $("stop").disabled = !busy;
    transcript.lastElementChild && transcript.lastElementChild.scrollIntoView({ block: "end" });
  }

  function logEvent(event) {
    const list = $("events");
    const item = document.createElement("li");
    if (event.seq !== undefined) item.dataset.seq = event.seq;
    const seq = document.createElement("span");
    seq.className = "seq";
    seq.textContent = event.seq !== undefined ? String(event.seq).padStart(4) + " " : "   - ";
    const type = document.createElement("span");
    type.className = "type";
    type.textContent = event.type + " ";
    const rest = Object.assign({}, event);
    delete rest.type; delete rest.seq; delete rest.stream_id;
    item.append(seq, type, document.createTextNode(JSON.stringify(rest)));
    list.append(item);
    while (list.children.length > MAX_RAW_EVENTS) list.firstElementChild.remove();
    list.scrollTop = list.scrollHeight;
  }

  function finish(state, note) {
    const pending = chat.pending;
    chat.messages.push({ role: "assistant", content: pending.text, state, note });
    chat.pending = null;
    saveChat();
    render();
  }

  function onEvent(event) {
    logEvent(event);
    const pending = chat.pending;
    if (!pending || (event.stream_id && event.stream_id !== pending.stream_id)) return;
    if (event.type === "disconnect") {
      say("status", "delivery interrupted (" + event.code + "); resuming", true);
      return; // the read loop resumes after event.resume_after
    }
    if (typeof event.seq === "number") {
      if (event.seq <= pending.last_seq) return; // already shown: never twice
      pending.last_seq = event.seq;
    }
    if (event.type === "start") {
      say("status", "streaming from " + (event.model || pending.model));
    } else if (event.type === "text") {
      pending.text += event.text;
      const answer = $("answer");
      if (answer) answer.querySelector(".text").textContent = pending.text;
    } else if (event.type === "done") {
      const usage = event.usage || {};
      const cost = typeof event.cost_usd === "number" ? " · $" + event.cost_usd.toFixed(6) : "";
      const note = (event.model || "") + " · " + (usage.input_tokens || 0) + " in / " +
        (usage.output_tokens || 0) + " out" + cost;
      say("status", "done (" + event.finish_reason + ")");
      finish("done", note);
      return;
    } else if (event.type === "cancelled") {
      say("status", "stopped");
      finish("cancelled", "stopped (" + (event.reason || "cancelled") + ")");
      return;
    } else if (event.type === "error") {
      say("status", event.message || event.code, true);
      finish("error", (event.code || "error") + ": " + (event.message || ""));
      return;
    }
    saveChat(); // the text and the seq it goes up to, together
  }

  async function follow(response) {
    const controller = new AbortController();
    reader = controller;
    try {
      await readEvents(response, onEvent, controller.signal);
    } finally {
      if (reader === controller) reader = null;
    }
    if (chat.pending && !controller.signal.aborted) await resume(); // ended early (a lagging reader): pick up again
  }

  async function resume() {
    const pending = chat.pending;
    if (!pending) return;
    render();
    say("status", "resuming stream " + pending.stream_id + " after event " + pending.last_seq);
    try {
      const response = await fetch("/api/v1/streams/" + encodeURIComponent(pending.stream_id) + "/events", {
        headers: headers({ "Last-Event-ID": String(pending.last_seq) }),
      });
      if (response.status === 404) {
        finish("error", "the stream is gone (expired or unknown)");
        return;
      }
      if (!response.ok) throw await failure(response);
      await follow(response);
    } catch (error) {
      say("status", error.message, true);
    }
  }

  async function send(text) {
    const model = $("model").value;
    chat.model = model;
    chat.messages.push({ role: "user", content: text, state: "done" });
    const messages = chat.messages.filter((m) => m.content).map((m) => ({ role: m.role, content: m.content }));
    saveChat();
    render();
    say("status", "sending");
    let response;
    try {
      response = await fetch("/api/v1/chat", {
        method: "POST",
        headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify({ model, messages, stream: true }),
      });
      if (!response.ok) throw await failure(response);
    } catch (error) {
      say("status", error.message, true);
      return;
    }
    chat.pending = { stream_id: response.headers.get("X-Stream-ID"), last_seq: 0, text: "", model };
    saveChat();
    render();
    try {
      await follow(response);
    } catch (error) {
      say("status", error.message, true);
    }
  }

  async function stop() {
    const pending = chat.pending;
    if (!pending) return;
    say("status", "stopping");
    try {
      await api("/api/v1/streams/" + encodeURIComponent(pending.stream_id) + "/cancel", { method: "POST" });
    } catch (error) {
      say("status", error.message, true);
    }
  }

  // --- usage -----------------------------------------------------------------------------------------------------
  const SVG = "http://www.w3.org/2000/svg";

  function svg(name, attributes, text) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
    if (text !== undefined) element.textContent = text;
    return element;
  }

  function chart(days) {
    const width = 640, height = 220, left = 48, bottom = 36, top = 16;
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Tokens per day" });
    const most = Math.max(1, ...days.map((d) => d.input_tokens + d.output_tokens));
    const slot = (width - left - 8) / Math.max(1, days.length);
    const scale = (height - top - bottom) / most;
    root.append(svg("text", { x: 4, y: 12, "font-size": 11, fill: "#6b7280" }, "tokens (input + output) and cost per day"));
    root.append(svg("line", { x1: left, y1: height - bottom, x2: width - 4, y2: height - bottom, stroke: "#d8dde6" }));
    root.append(svg("text", { x: left - 6, y: top + 8, "text-anchor": "end", "font-size": 10 }, String(most)));
    days.forEach((day, i) => {
      const x = left + i * slot + slot * 0.15, w = slot * 0.7;
      const input = day.input_tokens * scale, output = day.output_tokens * scale;
      const base = height - bottom;
      const bar = svg("g", { class: "day", "data-day": day.group });
      bar.append(svg("rect", { x, y: base - input, width: w, height: input, fill: "#9db4ea" }));
      bar.append(svg("rect", { x, y: base - input - output, width: w, height: output, fill: "#2457c5" }));
      bar.append(svg("title", {}, `${day.group}: ${day.input_tokens} in, ${day.output_tokens} out, $${day.cost_usd.toFixed(6)}`));
      bar.append(svg("text", { x: x + w / 2, y: base - input - output - 3, "text-anchor": "middle", "font-size": 10 },
        "$" + day.cost_usd.toFixed(4)));
      bar.append(svg("text", { x: x + w / 2, y: height - bottom + 14, "text-anchor": "middle", "font-size": 10 },
        day.group.slice(5)));
      root.append(bar);
    });
    return root;
  }

  async function loadUsage() {
    say("usage-status", "loading");
    try {
      const body = await api("/api/v1/usage?group_by=day");
      const days = body.data.totals.slice().sort((a, b) => a.group.localeCompare(b.group));
      $("usage-chart").replaceChildren(chart(days));
      $("usage-table").tBodies[0].replaceChildren(...days.map((d) => {
        const row = document.createElement("tr");
        for (const value of [d.group, d.requests, d.input_tokens, d.output_tokens, d.cost_usd.toFixed(6)]) {
          const cell = document.createElement("td");
          cell.textContent = String(value);
          row.append(cell);
        }
        return row;
      }));
      say("usage-status", days.length ? days.length + " day(s)" : "no usage yet");
    } catch (error) {
      say("usage-status", error.message, true);
    }
  }

  // --- images ----------------------------------------------------------------------------------------------------
  async function draw(prompt) {
    say("image-status", "generating");
    $("draw").disabled = true;
    try {
      const request = { model: $("image-model").value, prompt, n: 1, include_b64: true };
      if ($("image-size").value.trim()) request.size = $("image-size").value.trim();
      const body = await api("/api/v1/images/generations", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(request),
      });
      for (const image of body.data.images) {
        const img = document.createElement("img");
        img.alt = image.revised_prompt || prompt;
        img.src = "data:" + image.mime_type + ";base64," + image.b64_json;
        $("gallery").prepend(img);
      }
      say("image-status", "done");
    } catch (error) {
      say("image-status", error.message, true);
    } finally {
      $("draw").disabled = false;
    }
  }

  // --- wiring ----------------------------------------------------------------------------------------------------
  async function start() {
    render();
    if (!token) {
      say("who", "paste a token to start");
      return;
    }
    try {
      await fillModels($("model"), "text", chat.model);
      say("who", "signed in");
      render();
    } catch (error) {
      say("who", error.message, true);
      return;
    }
    fillModels($("image-model"), "image").catch(() => {});
    if (chat.pending && !reader) await resume();
  }

  $("signin").addEventListener("submit", (e) => { e.preventDefault(); setToken($("token").value); });
  $("sign-out").addEventListener("click", () => setToken(""));
  $("chat-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("prompt").value.trim();
    if (!text || chat.pending) return;
    $("prompt").value = "";
    send(text);
  });
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("chat-form").requestSubmit();
  });
  $("stop").addEventListener("click", stop);
  $("new-chat").addEventListener("click", () => {
    if (reader) reader.abort();
    chat = { model: $("model").value, messages: [], pending: null };
    saveChat();
    $("events").replaceChildren();
    say("status", "");
    render();
  });
  $("model").addEventListener("change", () => { chat.model = $("model").value; saveChat(); });
  $("image-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const prompt = $("image-prompt").value.trim();
    if (prompt) draw(prompt);
  });
  $("refresh-usage").addEventListener("click", loadUsage);
  for (const button of document.querySelectorAll("nav button[data-tab]")) {
    button.addEventListener("click", () => {
      for (const other of document.querySelectorAll("nav button[data-tab]")) {
        other.classList.toggle("active", other === button);
        $("tab-" + other.dataset.tab).hidden = other !== button;
      }
      if (button.dataset.tab === "usage") loadUsage();
    });
  }

  $("sign-out").hidden = !token;
  offerDevToken();
  start();
})();

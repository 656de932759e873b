// hostsim console: renders the /_hostsim/console/events stream and acts through the
// API's own routes. Plain script, no dependencies; every text goes in as textContent.
"use strict";

const MAX_TRAFFIC_LINES = 500;
const MAX_COMMAND_ROWS = 200;
const state = { sims: new Map(), faults: [], controls: [] };

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function $(selector) { return document.querySelector(selector); }

// -- the fleet ------------------------------------------------------------------------

function simCard(view) {
  let card = document.getElementById("sim-" + view.unique_name);
  if (!card) {
    card = el("article", { id: "sim-" + view.unique_name, class: "card sim",
                           "aria-labelledby": "sim-title-" + view.unique_name });
    $("#sims").append(card);
  }
  card.replaceChildren();
  card.append(el("h3", { id: "sim-title-" + view.unique_name }, view.unique_name));
  card.dataset.state = view.state;
  const list = el("dl");
  const storage = view.storage.map((s) => `${s.name} ${s.used}/${s.total}`).join(", ");
  const signal = view.signal.dbm === null ? "none (99)"
    : `${view.signal.rssi} (${view.signal.dbm} dBm)`;
  const active = Object.entries(view.faults)
    .filter(([name, value]) => value !== defaultOf(name))
    .map(([name, value]) => `${name}=${value}`).join(", ");
  for (const [term, value, cls] of [
    ["State", view.state, "state"], ["Registration", view.registration, "registration"],
    ["Radio", view.radio, "radio"], ["Signal", signal, "signal"], ["Storage", storage, "storage"],
    ["Mode", `${view.mode}, echo ${view.echo ? "on" : "off"}`, "mode"],
    ["Pending", String(view.pending), "pending"], ["Port", view.pty || "unplugged", "port"],
    ["Faults", active || "none", "faults"],
  ]) {
    list.append(el("dt", {}, term), el("dd", { class: cls }, value));
  }
  card.append(list);
}

function defaultOf(name) {
  const field = state.faults.find((f) => f.name === name);
  return field ? field.default : undefined;
}

function fillSimSelects() {
  for (const select of document.querySelectorAll(".sim-select")) {
    const chosen = select.value;
    select.replaceChildren();
    for (const name of state.sims.keys()) select.append(el("option", { value: name }, name));
    if (chosen && state.sims.has(chosen)) select.value = chosen;
  }
}

// -- commands ---------------------------------------------------------------------------

function commandRow(command) {
  const body = $("#commands tbody");
  let row = body.querySelector(`tr[data-sid="${command.sid}"]`);
  if (!row) {
    row = el("tr", { "data-sid": command.sid });
    body.prepend(row);
    while (body.rows.length > MAX_COMMAND_ROWS) body.lastElementChild.remove();
  }
  row.replaceChildren(
    el("td", {}, command.date_created.replace("T", " ").replace("Z", "")),
    el("td", {}, command.sim),
    el("td", {}, command.direction === "to_sim" ? "to Sim" : "from Sim"),
    el("td", { class: "payload" }, command.payload),
    el("td", { class: "status status-" + command.status }, command.status),
    el("td", { class: "history" }, command.history.map((h) => h.status).join(" → ")),
  );
}

// -- traffic ----------------------------------------------------------------------------

function trafficLog(name) {
  let log = document.getElementById("traffic-" + name);
  if (!log) {
    const box = el("div", { class: "card" });
    box.append(el("h3", { id: "traffic-title-" + name }, name));
    log = el("ol", { id: "traffic-" + name, class: "log", role: "log", tabindex: "0",
                     "aria-labelledby": "traffic-title-" + name, "aria-live": "off" });
    box.append(log);
    $("#traffic").append(box);
  }
  return log;
}

function addLine(name, line) {
  const log = trafficLog(name);
  const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  const arrow = line.dir === "in" ? "→ " : "← ";
  log.append(el("li", { class: "dir-" + line.dir }, arrow + line.text));
  while (log.childElementCount > MAX_TRAFFIC_LINES) log.firstElementChild.remove();
  if (stick) log.scrollTop = log.scrollHeight;
}

// -- the fault controls -----------------------------------------------------------------

function buildControls() {
  const box = $("#controls");
  box.replaceChildren();
  for (const control of state.controls) {
    const form = el("form", { class: "control", "data-control": control.name });
    if (control.param) {
      const id = `control-${control.name}-${control.param}`;
      form.append(el("label", { for: id }, `${control.name}: ${control.label}`),
                  el("input", { id, name: control.param, inputmode: "decimal",
                                autocomplete: "off" }));
    }
    const button = el("button", { type: "submit" }, control.name);
    if (!control.param) button.setAttribute("aria-description", control.label);
    form.append(button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      act(`/_hostsim/sims/${encodeURIComponent($("#fault-sim").value)}/${control.name}`,
          new FormData(form), $("#fault-result"));
    });
    box.append(form);
  }
  const plan = $("#plan-fields");
  plan.replaceChildren();
  for (const field of state.faults) {
    const id = "fault-" + field.name;
    const row = el("div", { class: "field" });
    if (field.kind === "bool") {
      row.append(el("input", { type: "checkbox", id, name: field.name }),
                 el("label", { for: id }, field.name));
    } else {
      row.append(el("label", { for: id }, `${field.name} (${field.metavar})`),
                 el("input", { id, name: field.name, inputmode: "decimal",
                               value: String(field.default), autocomplete: "off" }));
    }
    row.append(el("p", { class: "help", id: id + "-help" }, field.help));
    row.querySelector("input").setAttribute("aria-describedby", id + "-help");
    plan.append(row);
  }
  showPlan();
}

function showPlan() {
  const view = [...state.sims.values()].find((s) => s.unique_name === $("#fault-sim").value);
  if (!view) return;
  for (const field of state.faults) {
    const input = document.getElementById("fault-" + field.name);
    if (field.kind === "bool") input.checked = Boolean(view.faults[field.name]);
    else input.value = String(view.faults[field.name]);
  }
}

function planForm() {
  const data = new FormData();
  for (const field of state.faults) {
    const input = document.getElementById("fault-" + field.name);
    data.set(field.name, field.kind === "bool" ? String(input.checked) : input.value);
  }
  return data;
}

// -- acting through the API -------------------------------------------------------------

async function act(url, data, result) {
  const body = new URLSearchParams();
  for (const [name, value] of data) if (value !== "") body.set(name, value);
  result.textContent = "…";
  try {
    const response = await fetch(url, { method: "POST", body, credentials: "same-origin" });
    const answer = await response.json();
    result.textContent = response.ok ? "done: " + summary(answer)
      : `refused (${response.status}): ${answer.message}`;
    result.dataset.ok = String(response.ok);
    return response.ok ? answer : null;
  } catch (error) {
    result.textContent = "failed: " + error;
    result.dataset.ok = "false";
    return null;
  }
}

function summary(answer) {
  if (answer.sid) return `${answer.sid} ${answer.status}`;
  if (answer.indexes) return "stored at " + answer.indexes.map((i) => i ?? "full").join(", ");
  return answer.unique_name ? answer.unique_name : "ok";
}

function wireForms() {
  $("#send-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    if (await act("/v1/SmsCommands", new FormData(form), form.querySelector(".result"))) {
      $("#send-payload").select();
    }
  });
  $("#sms-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const sim = data.get("sim");
    data.delete("sim");
    act(`/_hostsim/sims/${encodeURIComponent(sim)}/sms`, data, form.querySelector(".result"));
  });
  $("#plan-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(`/_hostsim/sims/${encodeURIComponent($("#fault-sim").value)}/faults`, planForm(),
        $("#fault-result"));
  });
  $("#plan-clear").addEventListener("click", () => {
    const data = new FormData();
    data.set("reset", "true");
    act(`/_hostsim/sims/${encodeURIComponent($("#fault-sim").value)}/faults`, data,
        $("#fault-result"));
  });
  $("#fault-sim").addEventListener("change", showPlan);
}

// -- the stream -------------------------------------------------------------------------

function connect() {
  const source = new EventSource("/_hostsim/console/events");
  source.addEventListener("open", () => { $("#connection").textContent = "live"; });
  source.addEventListener("error", () => {
    $("#connection").textContent = "disconnected, reconnecting…";
  });
  source.addEventListener("snapshot", (event) => {
    const snap = JSON.parse(event.data);
    state.faults = snap.faults;
    state.controls = snap.controls;
    state.sims = new Map(snap.sims.map((s) => [s.unique_name, s]));
    $("#sims").replaceChildren();
    snap.sims.forEach(simCard);
    fillSimSelects();
    buildControls();
    $("#commands tbody").replaceChildren();
    [...snap.commands].reverse().forEach(commandRow);
    $("#traffic").replaceChildren();
    for (const [name, lines] of Object.entries(snap.traffic)) {
      trafficLog(name);
      lines.forEach((line) => addLine(name, line));
    }
    document.body.dataset.ready = "true";
  });
  source.addEventListener("sim", (event) => {
    const view = JSON.parse(event.data);
    state.sims.set(view.unique_name, view);
    simCard(view);
    if (view.unique_name === $("#fault-sim").value) showPlan();
  });
  source.addEventListener("command", (event) => commandRow(JSON.parse(event.data)));
  source.addEventListener("traffic", (event) => {
    const line = JSON.parse(event.data);
    addLine(line.sim, line);
  });
}

wireForms();
connect();

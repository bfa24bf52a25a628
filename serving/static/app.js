// The drawing page: wires the pad, the server connection and the result display together.

import { Connection, serverUrl } from "./connection.js";
import { showDigits, showText } from "./overlay.js";
import { DrawingPad } from "./pad.js";

const $ = (id) => document.getElementById(id);
const STATUS_TEXT = { connecting: "Connecting…", online: "Connected", offline: "Offline — retrying", reconnecting: "Reconnecting…" };

const view = { result: $("result"), overlay: $("overlay"), status: $("status"), model: $("model"), message: $("message") };
// Request ids grow with every drawing; `shown` is the id of the drawing on screen.
const ids = { next: 0, shown: 0 };
let sendQueued = false;

const connection = new Connection(serverUrl(window.location), {
  onMessage: receive,
  onStatus: setStatus,
  onOpen: () => setStatus("connecting"),
});
const pad = new DrawingPad($("pad"), drawingChanged);

function drawingChanged() {
  if (pad.isEmpty) {
    // Nothing to ask: show the placeholder now and make every pending result stale.
    ids.shown = ++ids.next;
    showText(view.result, "", { empty: true });
    showDigits(view.overlay, []);
    hideMessage();
    return;
  }
  queueSend();
}

/** Send the drawing once per animation frame at most: pointer events come faster than frames. */
function queueSend() {
  if (sendQueued) return;
  sendQueued = true;
  requestAnimationFrame(() => {
    sendQueued = false;
    sendDrawing();
  });
}

function sendDrawing() {
  if (pad.isEmpty) return;
  // Offline, the drawing waits: `hello` after the reconnect sends it.
  connection.send({ type: "recognize", id: ++ids.next, ...pad.snapshot() });
}

function receive(message) {
  const handlers = { hello, model: (m) => showModel(m.model), result, error };
  const handler = handlers[message.type];
  if (handler) handler(message);
  else console.debug("Ignoring message of type", message.type);
}

function hello(message) {
  setStatus("online");
  showModel(message.model);
  // A (re)connected server has seen nothing of the current drawing.
  queueSend();
}

function showModel(model) {
  const text = model ? `${model.name} v${model.version}` : "model —";
  view.model.textContent = text;
  view.model.setAttribute("aria-label", model ? `Model: ${model.name}, version ${model.version}` : "Model: none");
  view.model.dataset.version = model?.version ?? "";
  // A new model may read the current drawing differently.
  if (model && !pad.isEmpty) queueSend();
}

function result(message) {
  // Results arrive in order and stale drawings are dropped by the server, so any result newer
  // than the one on screen is the best reading available; older ones (before a clear) are void.
  if (typeof message.id !== "number" || message.id <= ids.shown || pad.isEmpty) return;
  ids.shown = message.id;
  showText(view.result, message.text, { empty: false, digits: message.digits || [] });
  showDigits(view.overlay, message.digits || []);
  hideMessage();
}

function error(message) {
  if (typeof message.id === "number" && message.id < ids.shown) return;
  view.message.textContent = `Server: ${message.message} (${message.code})`;
  view.message.hidden = false;
}

function hideMessage() {
  view.message.hidden = true;
  view.message.textContent = "";
}

function setStatus(state, detail) {
  view.status.dataset.state = state;
  const retry = detail?.retryMs ? ` in ${(detail.retryMs / 1000).toFixed(1)} s` : "";
  view.status.textContent = STATUS_TEXT[state] + (state === "offline" ? retry : "");
}

function undo() { pad.undo(); }
function clear() { pad.clear(); }

$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", clear);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    event.preventDefault();
    clear();
  } else if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === "z") {
    event.preventDefault();
    undo();
  }
});

connection.connect();

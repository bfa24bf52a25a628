// Websocket connection to the recognition server: JSON messages, status callbacks, reconnect with backoff.

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;

// The server accepts websockets at any path of its own port (PROTOCOL.md).
const WS_PATH = "/";

/** The websocket URL: ?server= verbatim if given, else the page's own host; ?token= is passed through. */
export function serverUrl(location) {
  const params = new URLSearchParams(location.search);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = new URL(params.get("server") || `${scheme}//${location.host}${WS_PATH}`);
  const token = params.get("token");
  if (token) url.searchParams.set("token", token);
  return url.toString();
}

export class Connection {
  /** onMessage(message) gets every parsed message; onStatus(state, detail) every state change. */
  constructor(url, { onMessage, onStatus, onOpen }) {
    this.url = url;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.onOpen = onOpen;
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
  }

  get isOpen() { return this.socket?.readyState === WebSocket.OPEN; }

  connect() {
    clearTimeout(this.timer);
    this.onStatus(this.attempt ? "reconnecting" : "connecting");
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener("open", () => { this.attempt = 0; this.onOpen?.(); });
    socket.addEventListener("message", (event) => this.#receive(event.data));
    socket.addEventListener("close", (event) => this.#closed(socket, event));
  }

  /** Send one message; false when there is no open connection (the caller resends on the next open). */
  send(message) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  #receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      console.warn("Ignoring a message that is not JSON:", data);
      return;
    }
    this.onMessage(message);
  }

  #closed(socket, event) {
    if (socket !== this.socket) return;
    // Exponential backoff with jitter, so a restarted server is not hit by every page at once.
    const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt) * (0.8 + 0.4 * Math.random());
    this.attempt += 1;
    this.onStatus("offline", { code: event.code, reason: event.reason, retryMs: delay });
    this.timer = setTimeout(() => this.connect(), delay);
  }
}

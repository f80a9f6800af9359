// The socket and its reconnect state machine: capped, jittered exponential backoff; a socket
// open long enough resets it; a close with 4401 (the sign-in ended) stops reconnecting.
// No DOM here: the page gives callbacks, and tests give a fake socket and fake timers.

export const BACKOFF_START_MS = 500;
export const BACKOFF_CAP_MS = 10000;
export const STABLE_AFTER_MS = 5000; // an open this long resets the backoff
export const OFFLINE_AFTER_FAILURES = 3; // "offline" instead of "reconnecting…" after this many
export const CLOSE_REVOKED = 4401; // the server ended this page's sign-in

/** How long to wait after the `failures`-th failure in a row: between half and all of
 * min(cap, start * 2^(failures-1)). */
export function backoffDelay(failures, random = Math.random) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * 2 ** (failures - 1));
  return ceiling / 2 + random() * (ceiling / 2);
}

/** What the status line says while waiting to reconnect. */
export function waitingStatus(failures, online) {
  if (failures >= OFFLINE_AFTER_FAILURES || !online) return { state: "offline", text: "offline" };
  return { state: "connecting", text: "reconnecting…" };
}

export class Connection {
  /**
   * @param {object} options
   * @param {() => string} options.url
   * @param {(url: string) => WebSocket} [options.createSocket]
   * @param {{setTimeout: Function, clearTimeout: Function}} [options.timers]
   * @param {() => boolean} [options.online]
   * @param {() => number} [options.random]
   * @param {(ws: object) => void} options.onOpen
   * @param {(frame: object) => void} options.onFrame
   * @param {(state: string, text: string) => void} options.onStatus
   * @param {() => void} options.onClosed  any close of the current socket
   * @param {() => void} options.onSignedOut
   */
  constructor(options) {
    this.url = options.url;
    this.createSocket = options.createSocket || ((url) => new WebSocket(url));
    this.timers = options.timers || globalThis;
    this.online = options.online || (() => true);
    this.random = options.random || Math.random;
    this.onOpen = options.onOpen;
    this.onFrame = options.onFrame;
    this.onStatus = options.onStatus;
    this.onClosed = options.onClosed || (() => {});
    this.onSignedOut = options.onSignedOut || (() => {});
    this.socket = null;
    this.open = false;
    this.signedOut = false;
    this.everConnected = false;
    this.failures = 0;
    this.reconnectTimer = null;
    this.stableTimer = null;
  }

  /** Whether `ws` is still this connection's socket (async work checks after each await). */
  isCurrent(ws) {
    return ws !== null && ws === this.socket;
  }

  connect() {
    this.clearReconnect();
    if (this.socket !== null || this.signedOut) return;
    const first = this.failures === 0 && !this.everConnected;
    this.onStatus("connecting", first ? "connecting…" : "reconnecting…");
    let ws;
    try {
      ws = this.createSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = ws;
    ws.addEventListener("open", () => this.handleOpen(ws));
    ws.addEventListener("message", (event) => this.handleMessage(ws, event));
    ws.addEventListener("close", (event) => this.handleClose(ws, event));
    // An error is always followed by close, which does the work.
  }

  handleOpen(ws) {
    if (!this.isCurrent(ws)) return;
    this.open = true;
    this.everConnected = true;
    this.onStatus("connected", "connected");
    this.stableTimer = this.timers.setTimeout(() => {
      this.failures = 0;
    }, STABLE_AFTER_MS);
    this.onOpen(ws);
  }

  handleMessage(ws, event) {
    if (!this.isCurrent(ws) || typeof event.data !== "string") return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame && typeof frame === "object") this.onFrame(frame);
  }

  handleClose(ws, event) {
    if (!this.isCurrent(ws)) return;
    this.dropSocket();
    if (event.code === CLOSE_REVOKED) {
      this.signedOut = true;
      this.clearReconnect();
      this.onStatus("offline", "signed out");
      this.onSignedOut();
    } else {
      this.scheduleReconnect();
    }
  }

  dropSocket() {
    this.socket = null;
    this.open = false;
    this.timers.clearTimeout(this.stableTimer);
    this.onClosed();
  }

  scheduleReconnect() {
    if (this.reconnectTimer !== null || this.signedOut) return;
    this.failures += 1;
    const delay = backoffDelay(this.failures, this.random);
    const status = waitingStatus(this.failures, this.online());
    this.onStatus(status.state, status.text);
    this.reconnectTimer = this.timers.setTimeout(() => this.connect(), delay);
  }

  clearReconnect() {
    this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }

  /** Gives up on the current socket (dead without knowing it) and reconnects after a backoff. */
  abandon() {
    const ws = this.socket;
    if (ws !== null) {
      this.dropSocket(); // its close event, whenever it comes, is ignored
      ws.close();
    }
    this.clearReconnect();
    this.scheduleReconnect();
  }

  /** Reconnects at once if no socket is open (back online, tab visible again). */
  reconnectNow() {
    if (this.socket === null && !this.signedOut) {
      this.clearReconnect();
      this.connect();
    }
  }

  /** Sends a JSON frame if the socket is open; false if it is not. */
  send(frame) {
    const ws = this.socket;
    if (ws === null || !this.open || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }
}

// The HTTP API as the page uses it: JSON in and out, bounded waits, errors as exceptions.

const FETCH_TIMEOUT_MS = 15000;
// `after` above every seq: the server answers "reload" with the newest seq, which is where a
// page that has just loaded starts following the change log.
const NEWEST = "9223372036854775807";

export class ApiError extends Error {
  constructor(method, url, status, body) {
    super(`${method} ${url} answered ${status}`);
    this.status = status;
    this.code = body && typeof body.error === "string" ? body.error : null;
    this.detail = body && typeof body.detail === "string" ? body.detail : null;
  }
}

async function request(method, url, payload) {
  const init = {
    method,
    headers: { Accept: "application/json" },
    cache: "no-store",
    credentials: "same-origin",
    // A server that accepts the connection and never answers must not stall the page.
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  };
  if (payload !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(payload);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let body = null;
  try {
    body = text === "" ? null : JSON.parse(text);
  } catch {
    body = null;
  }
  if (!response.ok) throw new ApiError(method, url, response.status, body);
  return body;
}

export const getJson = (url) => request("GET", url);
export const postJson = (url, payload) => request("POST", url, payload ?? {});
export const patchJson = (url, payload) => request("PATCH", url, payload);
export const putJson = (url) => request("PUT", url);
export const deleteJson = (url) => request("DELETE", url);

function query(params) {
  return new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString();
}

export function roomPath(room) {
  return `/api/rooms/${encodeURIComponent(room)}`;
}

export class Api {
  /** `messagesPath` is the page's own room's history (data-api-messages). */
  constructor({ pageRoom, messagesPath }) {
    this.pageRoom = pageRoom;
    this.messagesPath = messagesPath;
  }

  messagesUrl(room) {
    return room === this.pageRoom ? this.messagesPath : `${roomPath(room)}/messages`;
  }

  async messages(room, params) {
    const page = await getJson(`${this.messagesUrl(room)}?${query(params)}`);
    if (!page || !Array.isArray(page.messages)) throw new Error("unexpected history page");
    return page;
  }

  async events(after, { limit, rooms }) {
    const params = { after, limit };
    if (rooms.length > 0) params.rooms = rooms.join(",");
    const answer = await getJson(`/api/events?${query(params)}`);
    if (!answer || !Array.isArray(answer.events)) throw new Error("unexpected catch-up answer");
    return answer;
  }

  /** The newest seq of the change log (where a fresh page starts listening). */
  async newestSeq(rooms) {
    const answer = await this.events(NEWEST, { limit: 1, rooms });
    return Number(answer.cursor) || 0;
  }

  async rooms() {
    const answer = await getJson("/api/rooms");
    return Array.isArray(answer?.rooms) ? answer.rooms : [];
  }

  markRead(room, upTo) {
    return postJson(`${roomPath(room)}/read`, { up_to: upTo });
  }
}

// Subscriptions over one websocket (graphql-ws, graphql-transport-ws protocol) to /graphql on
// this origin. The key goes in connection_init. When the socket drops the client reconnects, and
// every subscription is sent again with its *current* variables: missionEvents' afterSeq moves
// forward with each event, so a resumed subscription replays only what was missed.
import { createClient, type Client } from "graphql-ws";
import { apiKey } from "./api";

export type LinkState = "connecting" | "connected" | "reconnecting" | "refused";

let client: Client | null = null;
let state: LinkState = "connecting";
let everConnected = false;
const listeners = new Set<(state: LinkState, resumed: boolean) => void>();

function setState(next: LinkState, resumed = false): void {
  state = next;
  for (const listener of listeners) listener(next, resumed);
}

export function linkState(): LinkState {
  return state;
}

/** Called with each change of the connection; `resumed` is true on a reconnect. */
export function onLinkState(listener: (state: LinkState, resumed: boolean) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

let lastArrival = 0;

/** When the latest websocket message reached the page (performance.now()'s clock): the start of
 * "how long until it is on screen". */
export function lastMessageArrival(): number {
  return lastArrival;
}

class TimedWebSocket extends WebSocket {
  constructor(url: string | URL, protocols?: string | string[]) {
    super(url, protocols);
    // registered before graphql-ws's own handler, so it runs first
    this.addEventListener("message", (event) => {
      lastArrival = event.timeStamp;
    });
  }
}

function socketUrl(): string {
  const { protocol, host } = window.location;
  return `${protocol === "https:" ? "wss" : "ws"}://${host}/graphql`;
}

export function liveClient(): Client {
  if (client) return client;
  everConnected = false;
  setState("connecting");
  client = createClient({
    url: socketUrl(),
    webSocketImpl: TimedWebSocket,
    lazy: false,
    keepAlive: 10_000,
    retryAttempts: Number.POSITIVE_INFINITY,
    connectionParams: () => {
      const key = apiKey();
      return key ? { Authorization: `Bearer ${key}` } : {};
    },
    // 4403: the key was refused; retrying will not change that.
    shouldRetry: (event) => !(event && typeof event === "object" && "code" in event && event.code === 4403),
    // The connection gave up (a refused key): `closed` has already said so; nothing to log.
    onNonLazyError: () => undefined,
    retryWait: async (retries) => {
      const wait = Math.min(300 * 2 ** retries, 5000) + Math.random() * 200;
      await new Promise((resolve) => setTimeout(resolve, wait));
    },
    on: {
      connected: () => {
        const resumed = everConnected;
        everConnected = true;
        setState("connected", resumed);
      },
      closed: (event) => {
        const code = event && typeof event === "object" && "code" in event ? (event as CloseEvent).code : 0;
        setState(code === 4403 ? "refused" : "reconnecting");
      },
    },
  });
  return client;
}

/** Drops the socket (a new key): the next `liveClient()` connects with the new key. */
export function resetLiveClient(): void {
  const old = client;
  client = null;
  old?.dispose();
}

export interface Subscription<T> {
  query: string;
  variables?: Record<string, unknown>;
  next: (data: T) => void;
  error?: (message: string) => void;
  complete?: () => void;
}

export function subscribe<T>(sub: Subscription<T>): { payload: { variables: Record<string, unknown> }; stop: () => void } {
  const payload = { query: sub.query, variables: { ...(sub.variables ?? {}) } };
  const stop = liveClient().subscribe<T>(payload, {
    next: (result) => {
      if (result.errors?.length) sub.error?.(result.errors.map((e) => e.message).join("; "));
      else if (result.data) sub.next(result.data as T);
    },
    error: (err) => {
      const message = Array.isArray(err)
        ? err.map((e: { message: string }) => e.message).join("; ")
        : err instanceof Error
          ? err.message
          : "the live connection was refused";
      sub.error?.(message);
    },
    complete: () => sub.complete?.(),
  });
  return { payload, stop };
}

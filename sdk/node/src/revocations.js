// The revocation feed (`GET /v1/revocations`), applied in memory.
//
// Start-up reads the feed as JSON from the oldest retained entry until nothing is left, then
// follows it as Server-Sent Events (or by long-polling with `wait=`). A 410 `cursor_expired`
// means the guard fell behind the feed's retention: it reads the whole feed again into a fresh
// state and swaps it in (the old state keeps refusing meanwhile). Until the first read is
// complete, and whenever nothing was heard from the feed for `staleAfterMs` (the server sends
// a keepalive every 15 s), `ready` is false and the guard refuses JWTs with 503: fail closed.
//
// INVARIANT: an item refuses until its `expires_at`, or until a later item for the same
// kind+id says `active`; unknown kinds are ignored (forward compatibility).

/** What the feed has revoked, by kind. */
export class RevocationState {
  constructor() {
    /** @type {Map<string, Map<string, number>>} kind → id → refused until (Unix seconds) */
    this.refused = new Map();
  }

  /**
   * Applies one feed item; returns the api-key id for `api_key` items (the caller drops its
   * cached introspection answers), else undefined.
   */
  apply(item) {
    if (!item || typeof item.kind !== 'string' || typeof item.id !== 'string') return undefined;
    const { kind, id, state } = item;
    if (kind === 'api_key') return id;
    if (!REFUSING[kind]) return undefined;
    let m = this.refused.get(kind);
    if (!m) this.refused.set(kind, (m = new Map()));
    if (state === 'active') m.delete(id);
    else if (REFUSING[kind].has(state)) {
      const until = Number.isFinite(item.expires_at) ? item.expires_at : Infinity;
      m.set(id, Math.max(until, m.get(id) ?? 0));
    }
    return undefined;
  }

  /** Whether `id` of `kind` is refused at `nowS` (Unix seconds). */
  has(kind, id, nowS) {
    if (id === undefined || id === null) return false;
    const m = this.refused.get(kind);
    if (!m || m.size === 0) return false;
    const until = m.get(id);
    if (until === undefined) return false;
    if (until <= nowS) {
      m.delete(id);
      return false;
    }
    return true;
  }

  /** Drops every entry whose `expires_at` has passed. */
  sweep(nowS) {
    for (const m of this.refused.values()) for (const [id, until] of m) if (until <= nowS) m.delete(id);
  }

  /**
   * Why a principal is refused, or undefined. Checks the spec's table: token (jti), family
   * (sid), installation (ins), agency, account, user (sub or any actor in the chain), app
   * (client_id).
   */
  refusal(p, nowS) {
    if (this.refused.size === 0) return undefined;
    if (this.has('token', p.tokenId, nowS)) return 'the token was revoked';
    if (this.has('token_family', p.grant, nowS)) return 'the grant was revoked';
    if (this.has('installation', p.installation, nowS)) return 'the installation was revoked';
    if (this.has('app', p.clientId, nowS)) return 'the app was deleted';
    if (this.has('agency', p.tenant.agency, nowS)) return 'the agency is suspended';
    if (this.has('account', p.tenant.account, nowS)) return 'the account is suspended';
    if (this.has('user', p.subject, nowS)) return 'the user is disabled';
    for (let a = p.act; a; a = a.act) if (this.has('user', a.sub, nowS)) return 'the actor is disabled';
    return undefined;
  }
}

const REFUSING = {
  token: new Set(['revoked']),
  token_family: new Set(['revoked']),
  installation: new Set(['revoked']),
  agency: new Set(['suspended', 'deleted']),
  account: new Set(['suspended', 'deleted']),
  user: new Set(['disabled', 'deleted']),
  app: new Set(['deleted']),
};

class CursorExpired extends Error {}

/** The feed refused the guard's credential (401, 403) or does not exist (404): a configuration error. */
export class FeedRefused extends Error {}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

/** Follows the feed and keeps a `RevocationState` current. */
export class RevocationFeed {
  /**
   * @param {{url: string, headers: () => Record<string, string>, mode?: 'sse' | 'poll',
   *          staleAfterMs?: number, pollWaitSeconds?: number, pageLimit?: number,
   *          onApiKey?: (id: string) => void, onChange?: () => void, onError?: (e: Error) => void,
   *          now?: () => number}} o
   */
  constructor(o) {
    this.url = o.url;
    this.headers = o.headers;
    this.mode = o.mode ?? 'sse';
    this.staleAfterMs = o.staleAfterMs ?? 45_000;
    this.pollWaitSeconds = o.pollWaitSeconds ?? 25;
    this.pageLimit = o.pageLimit ?? 1000;
    this.onApiKey = o.onApiKey ?? (() => {});
    this.onChange = o.onChange ?? (() => {});
    this.onError = o.onError ?? (() => {});
    this.now = o.now ?? Date.now;
    this.state = new RevocationState();
    this.cursor = undefined;
    this.synced = false;
    this.lastContact = -Infinity;
    this.resyncs = 0;
    this.abort = new AbortController();
    this.firstSync = new Promise((resolve, reject) => {
      this.resolveFirstSync = resolve;
      this.rejectFirstSync = reject;
    });
    this.running = null;
  }

  /** Whether JWTs may be accepted: first read done, and the feed heard from recently. */
  get ready() {
    return this.synced && this.now() - this.lastContact < this.staleAfterMs;
  }

  start() {
    this.running ??= this.run();
    return this.firstSync;
  }

  close() {
    this.abort.abort();
  }

  applyItem(state, item) {
    const key = state.apply(item);
    if (key) this.onApiKey(key);
    this.onChange(item);
  }

  url_(params) {
    const u = new URL(this.url);
    for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  async getJson(since, wait) {
    const r = await fetch(this.url_({ since, limit: this.pageLimit, wait }), {
      headers: { ...this.headers(), accept: 'application/json' },
      signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout((wait ?? 0) * 1000 + 10_000)]),
    });
    if (r.status === 410) throw new CursorExpired();
    if (!r.ok) {
      const E = [401, 403, 404].includes(r.status) ? FeedRefused : Error;
      throw new E(`revocation feed answered ${r.status}: ${(await r.text()).slice(0, 200)}`);
    }
    const body = await r.json();
    this.lastContact = this.now();
    if (!body || !Array.isArray(body.items) || typeof body.next !== 'string')
      throw new Error('revocation feed: malformed answer');
    return body;
  }

  /** Reads from `since` (or the start) until the feed has nothing newer, into `state`. */
  async catchUp(state, since) {
    let cursor = since;
    for (;;) {
      const body = await this.getJson(cursor);
      for (const item of body.items) this.applyItem(state, item);
      const done = body.items.length === 0 || body.next === cursor;
      cursor = body.next;
      if (done) return cursor;
    }
  }

  /** A full read into a fresh state, swapped in when complete. */
  async resync() {
    const fresh = new RevocationState();
    const cursor = await this.catchUp(fresh, undefined);
    this.state = fresh;
    this.cursor = cursor;
    this.resyncs += 1;
    this.onChange(null);
  }

  async run() {
    const signal = this.abort.signal;
    let backoff = 100;
    let needResync = true;
    const sweep = setInterval(() => this.state.sweep(Math.floor(this.now() / 1000)), 60_000);
    sweep.unref?.();
    while (!signal.aborted) {
      try {
        if (needResync) {
          await this.resync();
          needResync = false;
          if (!this.synced) {
            this.synced = true;
            this.resolveFirstSync();
          }
        }
        if (this.mode === 'sse') await this.followSse();
        else await this.poll();
        backoff = 100;
      } catch (e) {
        if (signal.aborted) break;
        if (e instanceof CursorExpired) {
          needResync = true;
          continue;
        }
        if (!this.synced && e instanceof FeedRefused) {
          // The service must not start with a guard that can never read the feed.
          this.rejectFirstSync(e);
          break;
        }
        this.onError(e);
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, 5_000);
      }
    }
    clearInterval(sweep);
  }

  async poll() {
    const body = await this.getJson(this.cursor, this.pollWaitSeconds);
    for (const item of body.items) this.applyItem(this.state, item);
    this.cursor = body.next;
  }

  /** One SSE connection, read until it closes or stays silent longer than `staleAfterMs`. */
  async followSse() {
    const headers = { ...this.headers(), accept: 'text/event-stream' };
    if (this.cursor !== undefined) headers['last-event-id'] = this.cursor;
    const conn = new AbortController();
    const signal = AbortSignal.any([this.abort.signal, conn.signal]);
    let watchdog = setTimeout(() => conn.abort(), this.staleAfterMs);
    const heard = () => {
      this.lastContact = this.now();
      clearTimeout(watchdog);
      watchdog = setTimeout(() => conn.abort(), this.staleAfterMs);
    };
    try {
      const r = await fetch(this.url_({ since: this.cursor }), { headers, signal });
      if (r.status === 410) throw new CursorExpired();
      if (!r.ok) throw new Error(`revocation feed answered ${r.status}`);
      if (!(r.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
        // A server without SSE: long-poll from now on.
        await r.body?.cancel();
        this.mode = 'poll';
        return;
      }
      heard();
      const decoder = new TextDecoder();
      let buf = '';
      for await (const chunk of r.body) {
        heard();
        buf = (buf + decoder.decode(chunk, { stream: true })).replace(/\r\n/g, '\n');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          this.event(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
        if (buf.length > 1 << 20) throw new Error('revocation feed: an event over 1 MiB');
      }
      throw new Error('revocation feed: the event stream closed');
    } finally {
      clearTimeout(watchdog);
    }
  }

  event(block) {
    let id;
    let event = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? '' : line.slice(c + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (event === 'revocation' && data.length) {
      let item;
      try {
        item = JSON.parse(data.join('\n'));
      } catch {
        return;
      }
      this.applyItem(this.state, item);
      if (id === undefined && typeof item.cursor === 'string') id = item.cursor;
    }
    if (id !== undefined) this.cursor = id;
  }
}

// API keys (`tsk_…`) checked by Tessera's introspection (RFC 7662), with short caches: a
// positive answer for `positiveMs` (never past the key's `exp`), a negative one for
// `negativeMs`. Concurrent checks of one key share one request. The cache is keyed by a hash
// of the key (the plaintext is not kept as a map key), bounded in size, and an `api_key` item
// of the revocation feed drops every cached answer of that key id.
//
// INVARIANT: "cannot tell" (Tessera unreachable, 5xx) is never cached and never `active`.

import { createHash } from 'node:crypto';

// `tsk_` + base62; the body's size is bounded so a huge header costs nothing.
const API_KEY = /^tsk_[0-9A-Za-z]{20,200}$/;

export const looksLikeApiKey = (s) => API_KEY.test(s);

export class ApiKeys {
  /**
   * @param {{url: string, headers: () => Record<string, string>, positiveMs?: number,
   *          negativeMs?: number, maxEntries?: number, timeoutMs?: number, now?: () => number}} o
   */
  constructor(o) {
    this.url = o.url;
    this.headers = o.headers;
    this.positiveMs = o.positiveMs ?? 10_000;
    this.negativeMs = o.negativeMs ?? 2_000;
    this.maxEntries = o.maxEntries ?? 10_000;
    this.timeoutMs = o.timeoutMs ?? 5_000;
    this.now = o.now ?? Date.now;
    /** @type {Map<string, {answer: object | null, until: number}>} */
    this.cache = new Map();
    /** @type {Map<string, Promise<object | null>>} */
    this.inflight = new Map();
    this.introspections = 0;
  }

  /** Drops every cached answer of key id `id` (`key_…`). */
  forget(id) {
    for (const [h, e] of this.cache) if (e.answer && e.answer.sub === id) this.cache.delete(h);
  }

  clear() {
    this.cache.clear();
  }

  /** The introspection answer of an active key, or null if it is not active. Throws if Tessera cannot tell. */
  async check(secret) {
    const h = createHash('sha256').update(secret).digest('base64url');
    const now = this.now();
    const hit = this.cache.get(h);
    if (hit && hit.until > now) return hit.answer;
    let p = this.inflight.get(h);
    if (!p) {
      p = this.introspect(secret).finally(() => this.inflight.delete(h));
      this.inflight.set(h, p);
    }
    const answer = await p;
    const at = this.now();
    let until = at + (answer ? this.positiveMs : this.negativeMs);
    if (answer && Number.isFinite(answer.exp)) until = Math.min(until, answer.exp * 1000);
    if (this.cache.size >= this.maxEntries) {
      // Drop the oldest eighth (a Map iterates in insertion order).
      let n = Math.ceil(this.maxEntries / 8);
      for (const k of this.cache.keys()) {
        if (n-- <= 0) break;
        this.cache.delete(k);
      }
    }
    this.cache.delete(h);
    this.cache.set(h, { answer, until });
    return answer;
  }

  async introspect(secret) {
    this.introspections += 1;
    const r = await fetch(this.url, {
      method: 'POST',
      headers: {
        ...this.headers(),
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: new URLSearchParams({ token: secret }).toString(),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!r.ok) throw new Error(`introspection answered ${r.status}`);
    const body = await r.json();
    if (!body || body.active !== true) return null;
    if (body.token_type !== 'api_key' || typeof body.sub !== 'string') return null;
    if (!body.tenant || typeof body.tenant.agency !== 'string') return null;
    return body;
  }
}

// The issuer's JWKS, fetched and cached. `Cache-Control: max-age` sets how long a copy is
// fresh (clamped to [minAge, maxAge]); a stale copy is refreshed in the background and still
// used meanwhile. An unknown `kid` triggers at most one refetch per `cooldown` (so a flood of
// forged kids cannot make the guard hammer the issuer). Keys are selected by jose's local JWKS,
// which matches `kid`, `kty` and the key's declared `alg`: a key is only used with its own alg.

import { createLocalJWKSet, errors } from 'jose';

const parseMaxAge = (cc) => {
  if (!cc) return undefined;
  if (/(^|,)\s*(no-store|no-cache)\s*(,|$)/i.test(cc)) return 0;
  const m = /(^|,)\s*max-age\s*=\s*"?(\d+)"?/i.exec(cc);
  return m ? Number(m[2]) : undefined;
};

/** The JWKS could not be fetched: the guard cannot decide (503), the token is not at fault. */
export class JwksUnavailable extends Error {}

export class Jwks {
  /**
   * @param {string} url
   * @param {{cooldownMs?: number, minAgeMs?: number, maxAgeMs?: number, defaultAgeMs?: number,
   *          timeoutMs?: number, now?: () => number, fetch?: typeof fetch}} [o]
   */
  constructor(url, o = {}) {
    this.url = url;
    this.cooldownMs = o.cooldownMs ?? 30_000;
    this.minAgeMs = o.minAgeMs ?? 30_000;
    this.maxAgeMs = o.maxAgeMs ?? 86_400_000;
    this.defaultAgeMs = o.defaultAgeMs ?? 300_000;
    this.timeoutMs = o.timeoutMs ?? 5_000;
    this.now = o.now ?? Date.now;
    this.fetch = o.fetch ?? fetch;
    this.local = null;
    this.freshUntil = 0;
    this.lastFetch = -Infinity;
    this.inflight = null;
    this.fetches = 0;
    /** The key resolver jose's `jwtVerify` takes. */
    this.getKey = this.getKey.bind(this);
  }

  /** Fetches now (sharing a fetch already under way). */
  refresh() {
    if (this.inflight) return this.inflight;
    this.lastFetch = this.now();
    this.inflight = (async () => {
      try {
        const r = await this.fetch(this.url, {
          headers: { accept: 'application/json' },
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        if (!r.ok) throw new JwksUnavailable(`JWKS ${this.url} answered ${r.status}`);
        const body = await r.json().catch(() => null);
        if (!body || !Array.isArray(body.keys)) throw new JwksUnavailable(`JWKS ${this.url} has no keys`);
        this.fetches += 1;
        this.local = createLocalJWKSet(body);
        const age = parseMaxAge(r.headers.get('cache-control'));
        const ms = age === undefined ? this.defaultAgeMs : age * 1000;
        this.freshUntil = this.now() + Math.min(this.maxAgeMs, Math.max(this.minAgeMs, ms));
      } catch (e) {
        throw e instanceof JwksUnavailable ? e : new JwksUnavailable(`JWKS ${this.url}: ${e.message}`);
      } finally {
        this.inflight = null;
      }
    })();
    return this.inflight;
  }

  async getKey(header, token) {
    if (!this.local) await this.refresh();
    else if (this.now() >= this.freshUntil && !this.inflight) {
      // Stale: refresh in the background, keep using what we have.
      this.refresh().catch(() => {});
    }
    try {
      return await this.local(header, token);
    } catch (e) {
      if (!(e instanceof errors.JWKSNoMatchingKey)) throw e;
      if (this.now() - this.lastFetch < this.cooldownMs) throw e;
      await this.refresh();
      return this.local(header, token);
    }
  }
}

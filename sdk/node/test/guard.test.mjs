// The guard's mechanics against a fake issuer (test/fake.mjs): verification, the revocation
// feed (SSE, long-poll, resync on 410, fail closed), API-key caches, declarations, answers.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createGuard, RevocationState } from '../src/index.js';
import { fakeIssuer } from './fake.mjs';

const AUD = 'https://contacts.test';
const KEY = 'tsk_' + 'a'.repeat(30);
const until = async (cond, ms = 2000) => {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
};
const status = (p) =>
  p.then(
    () => 200,
    (e) => e.status,
  );

let f;
before(async () => {
  f = await fakeIssuer();
});
after(() => f.close());

const guardOf = (o = {}) =>
  createGuard({ issuer: f.issuer, audience: AUD, credential: 'tsk_guard', onError: () => {}, ...o });

describe('verification', () => {
  let g;
  before(async () => {
    g = guardOf();
    await g.start();
  });
  after(() => g.close());

  test('a valid token gives the principal', async () => {
    const p = await g.authenticate(`Bearer ${await f.sign({ act: { sub: 'usr_admin' }, ins: 'ins_1', sid: 'grt_1' })}`);
    assert.equal(p.subject, 'usr_1');
    assert.deepEqual(p.tenant, { agency: 'agy_1', account: 'acc_1' });
    assert.deepEqual(p.scopes, ['contacts.readonly']);
    assert.deepEqual(p.actors, ['usr_admin']);
    assert.equal(p.installation, 'ins_1');
    assert.equal(p.clientId, 'app_1');
    assert.ok(g.grants(p, 'contacts.read'));
    assert.ok(!g.grants(p, 'contacts.write'));
  });

  test('wrong aud, iss, typ, expired, not yet valid, tampered, alg none: 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    const bad = [
      await f.sign({ aud: 'https://other.test' }),
      await f.sign({ iss: 'http://evil.test' }),
      await f.sign({}, { typ: 'JWT' }),
      await f.sign({ exp: now - 120 }),
      await f.sign({ nbf: now + 120 }),
      await f.sign({ tenant: undefined }),
    ];
    const good = await f.sign();
    const [h, p, s] = good.split('.');
    bad.push(`${h}.${p}.${s.slice(0, -4)}${s.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`);
    const payload = JSON.parse(Buffer.from(p, 'base64url'));
    payload.scope = 'contacts.write';
    bad.push(`${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`);
    bad.push(`${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${p}.`);
    bad.push('not a jwt', 'a.b.c');
    for (const t of bad) {
      const e = await g.authenticate(`Bearer ${t}`).then(() => null, (e) => e);
      assert.ok(e, `accepted: ${t}`);
      assert.equal(e.status, 401);
      const a = g.answer(e);
      assert.match(a.headers['www-authenticate'], /^Bearer realm="https:\/\/contacts.test", error="invalid_token", error_description="[^"]+"$/);
      assert.equal(a.headers['content-type'], 'application/problem+json');
    }
  });

  test('leeway: just expired passes, far expired does not', async () => {
    const now = Math.floor(Date.now() / 1000);
    assert.equal(await status(g.authenticate(`Bearer ${await f.sign({ exp: now - 10 })}`)), 200);
    assert.equal(await status(g.authenticate(`Bearer ${await f.sign({ exp: now - 40 })}`)), 401);
  });

  test('a cached verified token still expires, and is still revoked', async () => {
    let clock = Date.now();
    const h = guardOf({ revocations: { mode: 'sse', staleAfterSeconds: 3600 }, now: () => clock });
    await h.start();
    try {
      const t = await f.sign({ exp: Math.floor(clock / 1000) + 60 });
      assert.equal(await status(h.verifyJwt(t)), 200);
      assert.equal(h.verified.size, 1);
      assert.equal(await status(h.verifyJwt(t)), 200);
      clock += 95_000; // past exp + 30 s leeway
      assert.equal(await status(h.verifyJwt(t)), 401);
    } finally {
      h.close();
    }
  });

  test('a missing credential: 401 without an error code', async () => {
    for (const h of [undefined, '', 'Basic abc', 'Bearer ']) {
      const e = await g.authenticate(h).catch((e) => e);
      assert.equal(e.status, 401);
      assert.equal(g.answer(e).headers['www-authenticate'], 'Bearer realm="https://contacts.test"');
    }
  });

  test('an unknown kid refetches the JWKS at most once per cooldown', async () => {
    const before = f.jwksFetches;
    for (let i = 0; i < 5; i++) await status(g.authenticate(`Bearer ${await f.sign({}, { kid: `nope${i}` })}`));
    assert.ok(f.jwksFetches - before <= 1, `${f.jwksFetches - before} fetches`);
  });

  test('an unreachable JWKS is 503, not 401', async () => {
    const h = guardOf({ jwksUri: `${f.issuer}/no-keys-here`, revocations: { mode: 'off' } });
    await assert.rejects(h.start(), /answered 404/);
    const e = await h.verifyJwt(await f.sign()).catch((e) => e);
    assert.equal(e.status, 503);
    h.close();
  });

  test('the JWKS is refetched once its Cache-Control max-age has passed', async () => {
    let clock = Date.now();
    const h = guardOf({ revocations: { mode: 'off' }, verifiedCache: false, now: () => clock });
    await h.start();
    const n = f.jwksFetches;
    const t = await f.sign();
    await h.verifyJwt(t);
    clock += 200_000; // within max-age=300
    await h.verifyJwt(t);
    assert.equal(f.jwksFetches, n);
    clock += 200_000; // past it: refreshed in the background, the cached keys still used
    assert.equal(await status(h.verifyJwt(t)), 200);
    await until(() => f.jwksFetches === n + 1);
    h.close();
  });

  test('missing scope: 403 with insufficient_scope naming the scopes that grant it', async () => {
    const p = await g.authenticate(`Bearer ${await f.sign()}`);
    const e = await g.authorize(p, { permission: 'contacts.write' }, {}).catch((e) => e);
    assert.equal(e.status, 403);
    const a = g.answer(e);
    assert.equal(a.headers['www-authenticate'], 'Bearer realm="https://contacts.test", error="insufficient_scope", scope="contacts.write"');
    assert.equal(JSON.parse(a.body).code, 'forbidden');
  });

  test('another tenant: 404', async () => {
    const p = await g.authenticate(`Bearer ${await f.sign()}`);
    const decl = { permission: 'contacts.read', tenant: (r) => r };
    assert.equal(await status(g.authorize(p, decl, { agency: 'agy_1', account: 'acc_1' })), 200);
    assert.equal(await status(g.authorize(p, decl, { agency: 'agy_2' })), 404);
    assert.equal(await status(g.authorize(p, decl, { agency: 'agy_1', account: 'acc_2' })), 404);
  });
});

describe('revocation feed', () => {
  for (const mode of ['sse', 'poll']) {
    test(`${mode}: a revoked token is refused within 1 s, and the whole table applies`, async () => {
      const g = guardOf({ revocations: { mode } });
      await g.start();
      try {
        const x = (s) => `${s}_${mode}`;
        const t = await f.sign({ sid: 'grt_9', ins: 'ins_9', act: { sub: 'usr_imp' } });
        const p = await g.authenticate(`Bearer ${t}`);
        const exp = Math.floor(Date.now() / 1000) + 600;
        f.push({ kind: 'token', id: p.tokenId, agency: 'agy_1', state: 'revoked', at: 0, expires_at: exp });
        const ms = await until(async () => (await status(g.authenticate(`Bearer ${t}`))) === 401, 1000);
        assert.ok(ms < 1000);
        for (const [kind, id, claims] of [
          ['token_family', x('grt'), { sid: x('grt') }],
          ['installation', x('ins'), { ins: x('ins') }],
          ['app', x('app'), { client_id: x('app') }],
          ['agency', x('agy'), { tenant: { agency: x('agy') } }],
          ['account', x('acc'), { tenant: { agency: 'agy_1', account: x('acc') } }],
          ['user', x('usr'), { sub: x('usr') }],
          ['user', x('usr_y'), { act: { sub: 'usr_z', act: { sub: x('usr_y') } } }],
        ]) {
          const tok = await f.sign(claims);
          assert.equal(await status(g.authenticate(`Bearer ${tok}`)), 200, kind);
          f.push({ kind, id, agency: 'agy_1', state: kind === 'user' ? 'disabled' : kind === 'app' ? 'deleted' : kind.startsWith('a') && kind !== 'app' ? 'suspended' : 'revoked', at: 0, expires_at: exp });
          await until(async () => (await status(g.authenticate(`Bearer ${tok}`))) === 401, 1000);
        }
        // Reinstated agency: accepted again.
        f.push({ kind: 'agency', id: x('agy'), state: 'active', at: 0, expires_at: exp });
        const tok = await f.sign({ tenant: { agency: x('agy') } });
        await until(async () => (await status(g.authenticate(`Bearer ${tok}`))) === 200, 1000);
        // Unknown kinds are ignored.
        f.push({ kind: 'session_of_the_future', id: 'x', state: 'revoked', at: 0, expires_at: exp });
        assert.equal(await status(g.authenticate(`Bearer ${await f.sign()}`)), 200);
      } finally {
        g.close();
      }
    });
  }

  test('SSE reconnects after a dropped stream without losing items', async () => {
    const g = guardOf();
    await g.start();
    try {
      f.dropStreams();
      const t = await f.sign();
      const p = await g.authenticate(`Bearer ${t}`);
      f.push({ kind: 'token', id: p.tokenId, state: 'revoked', at: 0, expires_at: Math.floor(Date.now() / 1000) + 600 });
      await until(async () => (await status(g.authenticate(`Bearer ${t}`))) === 401, 3000);
    } finally {
      g.close();
    }
  });

  test('fails closed (503) until the first read, and resyncs on 410', async () => {
    f.feedDown = true;
    const g = guardOf({ revocations: { mode: 'poll' } });
    const started = g.start();
    try {
      const t = await f.sign();
      const e = await g.verifyJwt(t).catch((e) => e);
      assert.equal(e.status, 503);
      assert.equal(g.answer(e).headers['retry-after'], '1');
      f.feedDown = false;
      await started;
      assert.equal(await status(g.verifyJwt(t)), 200);
      // Fall behind the retention: every cursor so far is gone; the revocation of `t` is
      // only visible to a full read.
      const p = await g.verifyJwt(t);
      const resyncs = g.feed.resyncs;
      f.floor = f.items.length + 1;
      f.push({ kind: 'expired_out', id: 'x', state: 'revoked', at: 0, expires_at: 0 });
      f.push({ kind: 'token', id: p.tokenId, state: 'revoked', at: 0, expires_at: Math.floor(Date.now() / 1000) + 600 });
      await until(() => g.feed.resyncs > resyncs, 30_000);
      assert.equal(await status(g.verifyJwt(t)), 401);
    } finally {
      f.floor = 0;
      g.close();
    }
  });

  test('start() rejects when the feed refuses the guard\'s credential', async () => {
    const g = guardOf({ revocations: { url: `${f.issuer}/v1/nothing-here` } });
    await assert.rejects(g.start(), /revocation feed answered 404/);
    g.close();
  });

  test('a silent feed makes JWTs 503 after staleAfter', async () => {
    let clock = Date.now();
    const g = guardOf({ revocations: { mode: 'sse', staleAfterSeconds: 5 }, now: () => clock });
    await g.start();
    try {
      assert.equal(await status(g.verifyJwt(await f.sign())), 200);
      await new Promise((r) => setTimeout(r, 300)); // the stream's backlog has arrived
      clock += 6000;
      assert.equal(await status(g.verifyJwt(await f.sign())), 503);
    } finally {
      g.close();
    }
  });

  test('entries expire with their expires_at (plus leeway)', () => {
    const s = new RevocationState();
    s.apply({ kind: 'token', id: 'j', state: 'revoked', expires_at: 100 });
    assert.ok(s.has('token', 'j', 99));
    assert.ok(!s.has('token', 'j', 100));
    s.apply({ kind: 'user', id: 'u', state: 'disabled', expires_at: 100 });
    s.apply({ kind: 'user', id: 'u', state: 'active', expires_at: 100 });
    assert.ok(!s.has('user', 'u', 0));
  });
});

describe('API keys', () => {
  test('introspected, cached, and dropped by an api_key feed item', async () => {
    f.keys.set(KEY, { active: true, token_type: 'api_key', sub: 'key_1', scope: 'contacts.readonly', tenant: { agency: 'agy_1', account: null } });
    const g = guardOf({ apiKeys: { positiveSeconds: 60, negativeSeconds: 60 } });
    await g.start();
    try {
      const n = f.introspections;
      const all = await Promise.all([1, 2, 3].map(() => g.authenticate(`Bearer ${KEY}`)));
      assert.equal(all[0].subject, 'key_1');
      assert.equal(all[0].keyId, 'key_1');
      assert.equal(f.introspections - n, 1, 'concurrent checks share one introspection');
      await g.authenticate(`Bearer ${KEY}`);
      assert.equal(f.introspections - n, 1, 'cached');
      f.keys.delete(KEY);
      f.push({ kind: 'api_key', id: 'key_1', state: 'revoked', at: 0, expires_at: Math.floor(Date.now() / 1000) + 60 });
      await until(async () => (await status(g.authenticate(`Bearer ${KEY}`))) === 401, 1000);
      // Negative answers are cached too.
      const m = f.introspections;
      await status(g.authenticate(`Bearer ${KEY}`));
      assert.equal(f.introspections, m);
    } finally {
      g.close();
    }
  });
});

describe('declarations', () => {
  test('a route without a declaration, or with a malformed one, is refused at registration', () => {
    const g = guardOf();
    const app = { get() {} };
    const r = g.routes(app);
    assert.throws(() => r.get('/x', (req, res) => res.end()), /declares its permission/);
    assert.throws(() => r.get('/x', {}, () => {}), /permission/);
    assert.throws(() => r.get('/x', { permission: 'contacts.read', public: true }, () => {}), /public/);
    assert.throws(() => r.get('/x', { permission: 'contacts.read' }), /handler/);
    r.get('/x', { permission: 'contacts.read' }, () => {});
    r.get('/health', { public: true }, () => {});
  });

  test('an unknown permission makes start() fail', async () => {
    const g = guardOf();
    g.routes({ get() {} }).get('/x', { permission: 'nothing.here' }, () => {});
    await assert.rejects(g.start(), /not in Tessera's catalog: nothing.here/);
    g.close();
  });
});

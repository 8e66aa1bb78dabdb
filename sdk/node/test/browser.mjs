// A minimal browser for the sign-in and consent pages (copied from interop/node/interop.test.mjs):
// a cookie jar, no redirects followed, the first <form> of each page filled in.

import assert from 'node:assert/strict';

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };
function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name) => {
    if (name[0] === '#') {
      const code = name[1].toLowerCase() === 'x' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

function parseAttributes(text) {
  const attributes = {};
  const re = /([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  for (const m of text.matchAll(re)) {
    attributes[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attributes;
}

/** The first <form> of a page: method, action (resolved against the page's URL), hidden inputs,
 *  the first (or selected) option of each <select>, named buttons, names of visible inputs. */
function parseForm(html, pageUrl) {
  const page = html.replace(/<!--[\s\S]*?-->/g, '');
  const open = /<form\b((?:[^>"']|"[^"]*"|'[^']*')*)>/i.exec(page);
  assert.ok(open, `no <form> on the page at ${pageUrl}:\n${html.slice(0, 2000)}`);
  const rest = page.slice(open.index + open[0].length);
  const close = rest.search(/<\/form\s*>/i);
  const body = close === -1 ? rest : rest.slice(0, close);
  const attributes = parseAttributes(open[1]);
  const form = {
    method: (attributes.method || 'get').toLowerCase(),
    action: new URL(attributes.action || pageUrl, pageUrl).href,
    hidden: {},
    selects: {},
    buttons: [],
    inputs: [],
  };
  let select = null;
  const tags = /<(\/?)(input|button|select|option)\b((?:[^>"']|"[^"]*"|'[^']*')*)>/gi;
  for (const m of body.matchAll(tags)) {
    const [, closing, rawTag, rawAttributes] = m;
    const tag = rawTag.toLowerCase();
    const a = parseAttributes(rawAttributes);
    if (closing) {
      if (tag === 'select') select = null;
      continue;
    }
    if (tag === 'input' && a.name) {
      const type = (a.type || 'text').toLowerCase();
      if (type === 'hidden') form.hidden[a.name] = a.value ?? '';
      else if (type === 'submit') form.buttons.push([a.name, a.value ?? '']);
      else if (type === 'checkbox' || type === 'radio') {
        if ('checked' in a && !(a.name in form.hidden)) form.hidden[a.name] = a.value ?? 'on';
      } else form.inputs.push(a.name);
    } else if (tag === 'button' && a.name) {
      form.buttons.push([a.name, a.value ?? '']);
    } else if (tag === 'select' && a.name) {
      select = a.name;
    } else if (tag === 'option' && select !== null) {
      if (!(select in form.selects) || 'selected' in a) {
        const text = body.slice(m.index + m[0].length).split('<', 1)[0];
        form.selects[select] = a.value ?? decodeEntities(text.trim());
      }
    }
  }
  return form;
}

export class Browser {
  cookies = new Map();

  /** @param {{email: string, password: string, redirectUri: string}} who */
  constructor(who) {
    this.who = who;
  }

  async request(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.cookies.size) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((attr) => {
        const [k, v = ''] = attr.split('=').map((s) => s.trim());
        if (k.toLowerCase() === 'max-age') return Number(v) <= 0;
        if (k.toLowerCase() === 'expires') return Date.parse(v) <= Date.now();
        return false;
      });
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }

  /** Signs in and consents through the HTML pages; returns the final redirect's Location. */
  async authorize(authorizationUrl) {
    let url = authorizationUrl.href;
    let response = await this.request(url);
    for (let step = 0; step < 4; step += 1) {
      if (response.status === 302 || response.status === 303) {
        const location = new URL(response.headers.get('location'), url).href;
        if (location.startsWith(this.who.redirectUri)) return location;
        url = location;
        response = await this.request(url);
        continue;
      }
      const html = await response.text();
      assert.equal(response.status, 200, `step ${step}: ${response.status} from ${url}: ${html.slice(0, 2000)}`);
      const form = parseForm(html, url);
      assert.equal(form.method, 'post', `the form at ${url} does not post`);
      const fields = { ...form.hidden, ...form.selects };
      if (form.inputs.includes('password')) {
        Object.assign(fields, { email: this.who.email, password: this.who.password });
      } else {
        const decisions = form.buttons.filter(([name]) => name === 'decision').map(([, v]) => v);
        assert.ok(decisions.includes('allow'), `no decision=allow button at ${url}: ${JSON.stringify(form)}`);
        fields.decision = 'allow';
      }
      url = form.action;
      response = await this.request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields),
      });
    }
    throw new Error(`no redirect to ${this.who.redirectUri} after four pages`);
  }
}

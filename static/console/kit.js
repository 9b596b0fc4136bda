/* TalIA console kit: the helpers every staff page shares (the console, the monitor, the leads dashboard),
   loaded before the page's own script and exposed as window.TalIAKit. No dependencies, no build step.
   Text is only ever set as text (textContent, text nodes), never parsed as HTML. */
(() => {
  'use strict';

  // Translated text comes from the page (#console-strings); {placeholders} are filled in here.
  const STRINGS = {};
  for (const el of document.querySelectorAll('#console-strings [data-key]')) STRINGS[el.dataset.key] = el.textContent.trim();
  const t = (key, vars) => (STRINGS[key] || key).replace(/\{(\w+)\}/g, (m, k) => (vars && vars[k] != null ? String(vars[k]) : m));

  // h(tag, attrs, ...children): attributes via setAttribute, handlers via on*, children as nodes or text.
  const h = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      const v = attrs[k];
      if (v == null || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of kids) if (c != null && c !== false) e.append(c);
    return e;
  };
  const show = (el, text) => {
    if (!el) return;
    el.textContent = text || '';
    el.hidden = !text;
  };

  // Storage that tolerates a browser which blocks it.
  const store = (area, key, value) => {
    try {
      const s = window[area];
      if (value === undefined) return s.getItem(key);
      if (value === null) s.removeItem(key);
      else s.setItem(key, value);
    } catch (e) { /* blocked: the setting lasts for this page only */ }
    return null;
  };

  function csrfToken() {
    const m = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
    if (m) return decodeURIComponent(m[1]);
    const input = document.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : '';
  }

  // The JSON API (session auth with CSRF). Resolves to {ok, status, data, code, error, fields}; `error` is
  // the server's message in the agent's language (its `localized` copy; `message` is English), or ours,
  // and `fields` the per-field messages likewise; status 0 and code "offline" when the request never arrived.
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') headers['X-CSRFToken'] = csrfToken();
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let r;
    try {
      r = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      return { ok: false, status: 0, data: {}, code: 'offline', error: t('offline') };
    }
    let data = null;
    try { data = await r.json(); } catch (e) { /* not JSON: a proxy or CSRF error page */ }
    data = data && typeof data === 'object' ? data : {};
    const err = data.error && typeof data.error === 'object' ? data.error : {};
    const local = err.localized && typeof err.localized === 'object' ? err.localized : {};
    return {
      ok: r.ok, status: r.status, data,
      code: r.ok ? '' : String(err.code || r.status),
      error: r.ok ? '' : String(local.message || err.message || '') || (r.status === 401 ? t('signedOut') : t('failed')),
      fields: (r.ok ? null : local.fields || err.fields) || {}
    };
  }

  window.TalIAKit = Object.freeze({ strings: Object.freeze(STRINGS), t, h, show, store, csrfToken, api });
})();

/* TalIA web chat widget: one <script> tag, shadow DOM, no dependencies, no build step.
   API contract: docs/webchat-api.md. Message text is only ever set as text, never parsed as HTML. */
(() => {
  'use strict';
  const S = document.currentScript;
  if (!S || window.TalIA) return;
  const D = S.dataset;
  const T = {
    es: {
      open: 'Abrir el chat', openN: 'Abrir el chat (mensajes nuevos: {n})', close: 'Cerrar el chat',
      human: 'Hablar con una persona', stop: 'Dejar de esperar', end: 'Terminar chat', endQ: '¿Terminar esta conversación?',
      yes: 'Sí, terminar', cancel: 'Cancelar', send: 'Enviar', msg: 'Tu mensaje', ph: 'Escribe tu mensaje…',
      log: 'Conversación', you: 'Tú', bot: 'Asistente', agent: 'Agente',
      botTyping: 'El asistente está escribiendo', agTyping: '{n} está escribiendo',
      waiting: 'Esperando a una persona del equipo…',
      noAgents: 'Ahora mismo no hay nadie conectado: te responderemos en cuanto sea posible.',
      fallback: 'Si nadie puede atenderte en {m} min, el asistente seguirá ayudándote.',
      joined: '{n} se ha unido a la conversación.', back: 'Vuelves a hablar con el asistente.',
      ended: 'La conversación ha terminado.', again: 'Empezar otra conversación',
      failed: 'No se ha podido enviar.', retry: 'Reintentar', wait: 'Demasiados mensajes seguidos: espera {s} s.',
      slow: 'Vas muy rápido: espera unos segundos.', err: 'Algo ha fallado. Inténtalo de nuevo.',
      denied: 'El chat no está disponible en esta página.', reconn: 'Conexión perdida. Reconectando…',
      consent: 'Guardamos esta conversación y, solo si nos das permiso, tus datos de contacto (nombre, correo, teléfono, empresa) para atender tu consulta.',
      ver: 'Versión {v}.', accept: 'Aceptar', decline: 'No, gracias', cOk: 'Gracias, hemos anotado tu respuesta.',
      choose: '¿Con quién quieres hablar?', withBot: 'Chatear con el asistente', sources: 'Fuentes', wa: 'Seguir por WhatsApp',
      att: 'Adjuntar una imagen o un PDF', file: 'Archivo', bad: 'Solo imágenes o PDF, y no demasiado grandes.',
      endAskT: 'Le hemos pedido al equipo que cierre la conversación…', endAsk: 'Le hemos pedido a {n} que cierre la conversación…', endNo: '{n} quiere seguir la conversación un momento.',
      rateQ: '¿Qué tal te hemos atendido?', rate: '{n} de 5', cmt: 'Comentario (opcional)', rSend: 'Enviar valoración', thx: '¡Gracias por tu valoración!',
      mail: 'Tu correo', tr: 'Enviarme la conversación por correo', sent: 'Te la enviamos por correo en unos minutos.',
      greet: 'Hola, esto es {b}. ¿En qué te ayudamos?', eta: 'Solemos responder en {m} min.', away: 'Estamos fuera de horario; volvemos el {w}.',
      leave: 'Déjanos un correo o teléfono y te contactamos.', pre: 'Antes de empezar, ¿quién eres?', name: 'Nombre', email: 'Correo',
      phone: 'Teléfono', badD: 'Revisa los datos marcados.', needC: 'Para guardar tus datos, acepta el aviso.'
    },
    en: {
      open: 'Open the chat', openN: 'Open the chat (new messages: {n})', close: 'Close the chat',
      human: 'Talk to a person', stop: 'Stop waiting', end: 'End chat', endQ: 'End this conversation?',
      yes: 'Yes, end it', cancel: 'Cancel', send: 'Send', msg: 'Your message', ph: 'Type your message…',
      log: 'Conversation', you: 'You', bot: 'Assistant', agent: 'Agent',
      botTyping: 'The assistant is typing', agTyping: '{n} is typing',
      waiting: 'Waiting for a person from the team…',
      noAgents: 'Nobody is online right now: we’ll answer as soon as we can.',
      fallback: 'If nobody can join within {m} min, the assistant will keep helping you.',
      joined: '{n} has joined the conversation.', back: 'You’re back with the assistant.',
      ended: 'This conversation has ended.', again: 'Start a new conversation',
      failed: 'Couldn’t send.', retry: 'Retry', wait: 'Too many messages in a row: please wait {s} s.',
      slow: 'You’re going too fast: please wait a few seconds.', err: 'Something went wrong. Please try again.',
      denied: 'The chat isn’t available on this page.', reconn: 'Connection lost. Reconnecting…',
      consent: 'We store this conversation and, only with your permission, your contact details (name, email, phone, company) to handle your request.',
      ver: 'Version {v}.', accept: 'Accept', decline: 'No thanks', cOk: 'Thank you, we’ve noted your answer.',
      choose: 'Who would you like to talk to?', withBot: 'Chat with the assistant', sources: 'Sources', wa: 'Continue on WhatsApp',
      att: 'Attach an image or a PDF', file: 'File', bad: 'Only images or PDFs, and not too large.',
      endAskT: 'We asked the team to end the conversation…', endAsk: 'We asked {n} to end the conversation…', endNo: '{n} would like to continue for a moment.',
      rateQ: 'How did we do?', rate: '{n} out of 5', cmt: 'Comment (optional)', rSend: 'Send rating', thx: 'Thanks for your rating!',
      mail: 'Your email', tr: 'Email me the transcript', sent: 'It’s on its way to your inbox.',
      greet: 'Hi, this is {b}. How can we help?', eta: 'We usually reply within {m} min.', away: 'We’re out of hours; back on {w}.',
      leave: 'Leave an email or phone and we’ll get back to you:', pre: 'Before we start, who are you?', name: 'Name', email: 'Email',
      phone: 'Phone', badD: 'Check the marked details.', needC: 'To store your details, accept the notice.'
    }
  };
  const LC = /^en/i.test(D.locale || navigator.language || '') ? 'en' : 'es';
  const t = (k, v) => T[LC][k].replace(/\{(\w)\}/g, (_, x) => v[x]);
  const BASE = (D.baseUrl || new URL(S.src || '', location.href).origin).replace(/\/+$/, '');
  const TOKEN = D.token || '';
  const COLOR = D.color && window.CSS && CSS.supports('color', D.color) ? D.color : '#0b6bcb';
  const PAGE = D.mode === 'page';
  const SK = 'talia.session', CK = 'talia.consent', PK = 'talia.prechat';
  const tf = new Intl.DateTimeFormat(LC, { hour: '2-digit', minute: '2-digit' });
  const df = new Intl.DateTimeFormat(LC, { dateStyle: 'long' });
  const enc = encodeURIComponent;

  // Storage, with a memory fallback when localStorage is blocked.
  const mem = {};
  const sget = k => { try { const v = localStorage.getItem(k); if (v != null) return v; } catch (e) { /* blocked */ } return mem[k] ?? null; };
  const sset = (k, v) => { mem[k] = v; try { localStorage.setItem(k, v); } catch (e) { /* blocked */ } };
  const rid = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(18)))).replace(/[+/]/g, c => (c === '+' ? '-' : '_'));
  let sid = sget(SK);
  const known = /^[\w-]{8,128}$/.test(sid || '');
  if (!known) sset(SK, (sid = rid()));

  // h(tag, attrs, ...children): attributes via setAttribute, handlers via on*, children as nodes or text.
  const h = (tag, a, ...kids) => {
    const e = document.createElement(tag);
    for (const k in a || {}) {
      const v = a[k];
      if (v == null || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of kids) if (c != null && c !== false) e.append(c);
    return e;
  };
  const NS = 'http://www.w3.org/2000/svg';
  const CHAT = 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z';
  const X = 'M6.4 5 5 6.4l5.6 5.6L5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z';
  const icon = document.createElementNS(NS, 'svg'), ipath = document.createElementNS(NS, 'path');
  icon.setAttribute('viewBox', '0 0 24 24');
  icon.setAttribute('aria-hidden', 'true');
  ipath.setAttribute('d', CHAT);
  icon.append(ipath);

  const CSS_TEXT = `:host{all:initial}
*{box-sizing:border-box}
.w{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;--f:#fff}
button,textarea,input{font:inherit;color:inherit;margin:0}
button{cursor:pointer}
button:disabled{cursor:default;opacity:.6}
:focus-visible{outline:2px solid transparent;box-shadow:0 0 0 2px #fff,0 0 0 4px #1d1d1f}
.ln:focus-visible{outline:3px solid #1d1d1f;outline-offset:3px}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}
.pn:has(.ch:not([hidden])) .hb{display:none}
.fp .pn{inset:0;width:auto;max-width:none;height:auto;max-height:none;border-radius:0}.fp .ln,.fp .x{display:none}
.g{max-width:85%;align-self:flex-start}.pf{display:grid;gap:6px;text-align:left}.pf p{margin:0}
.pf input{width:100%;font:inherit}.pf [aria-invalid]{outline:2px solid #b3261e}
[hidden]{display:none!important}
.ln{position:fixed;right:20px;bottom:20px;width:58px;height:58px;border-radius:50%;border:0;background:var(--c);color:var(--f);display:grid;place-items:center;box-shadow:0 4px 14px #0005;z-index:2147483000}
.ln svg{width:28px;height:28px;fill:currentColor}
.bd{position:absolute;top:-3px;right:-3px;min-width:20px;height:20px;padding:0 5px;border-radius:10px;background:#c62828;color:#fff;font-size:12px;line-height:20px}
.pn{position:fixed;right:20px;bottom:90px;width:380px;max-width:calc(100vw - 24px);height:580px;max-height:calc(100vh - 110px);background:#fff;border-radius:14px;box-shadow:0 10px 40px #0005;display:flex;flex-direction:column;overflow:hidden;z-index:2147483000}
@media (max-width:480px){.pn{inset:0;width:auto;max-width:none;height:auto;max-height:none;border-radius:0}.o .ln{display:none}}
.hd{background:var(--c);color:var(--f);padding:10px 8px 10px 14px;display:flex;flex-wrap:wrap;align-items:center;gap:6px}
.hd h2{flex:1;margin:0;font-size:16px;font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.ac{display:flex;gap:6px;width:100%}
.hd button{background:transparent;border:1px solid currentColor;border-radius:8px;padding:3px 9px;font-size:13px}
.hd .x{border:0;font-size:24px;line-height:1;padding:0 8px}
.bar{padding:8px 12px;background:#f3f5f7;border-bottom:1px solid #e1e4e8;font-size:13px}
.bar p{margin:0 0 6px}
.bt{display:flex;gap:6px;flex-wrap:wrap}
.b{border:1px solid var(--c);background:#fff;color:#1d1d1f;border-radius:8px;padding:5px 11px;font-size:13px}
a.b{text-decoration:none;display:inline-block}
.p{background:var(--c);color:var(--f)}
.lg{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px}
.lg:focus-visible{box-shadow:inset 0 0 0 2px #1d1d1f}
.sc{display:flex;flex-direction:column;gap:8px}
.dt{align-self:center;font-size:12px;color:#5f6368}
.m{max-width:85%;align-self:flex-start}
.m.u{align-self:flex-end}
.tx{padding:8px 12px;border-radius:14px;background:#eef0f3;white-space:pre-wrap;overflow-wrap:anywhere}
.u .tx{background:var(--c);color:var(--f)}
.mt,.er{font-size:11.5px;color:#5f6368;margin:2px 6px}
.u .mt,.er{text-align:right}
.sd{opacity:.6}
.fl .tx{box-shadow:0 0 0 2px #b3261e}
.er{color:#b3261e}
.er button{background:none;border:0;text-decoration:underline;padding:0 0 0 4px}
.n{align-self:center;text-align:center;font-size:12.5px;color:#444;background:#f3f5f7;border-radius:10px;padding:6px 10px;max-width:92%}
.n .b{margin-left:6px}
.cs{list-style:none;margin:4px 6px 0;padding:0;font-size:12.5px}
.cs a{color:#0a58ca;display:inline-block;max-width:100%;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;vertical-align:bottom}
.ty{padding:0 14px 6px;font-size:12.5px;color:#5f6368}
.ty i{display:inline-block;width:4px;height:4px;margin-left:3px;border-radius:50%;background:currentColor;animation:k 1.2s infinite}
.ty i:nth-child(3){animation-delay:.2s}.ty i:nth-child(4){animation-delay:.4s}
@keyframes k{0%,60%,100%{opacity:.2}30%{opacity:1}}
@media (prefers-reduced-motion:reduce){.ty i{animation:none}}
.fm{display:flex;gap:8px;padding:10px;border-top:1px solid #e1e4e8;align-items:flex-end}
textarea{flex:1;resize:none;border:1px solid #b9bec5;border-radius:10px;padding:8px 10px;min-height:40px;max-height:120px;background:#fff}
.fm .b{height:40px;padding:0 14px;font-size:14px}
.rt{display:flex;flex-direction:column;gap:6px;width:92%}
.rt .bt{justify-content:center}
.rt .b,.rt p{margin:0}
.rt [aria-pressed=true]{background:var(--c);color:var(--f)}
.rt input{border:1px solid #b9bec5;border-radius:10px;padding:6px 10px}

.fm .c{padding:0 9px}
.fs a{display:block;margin:4px 6px 0;color:#0a58ca}
.fs img{display:block;max-width:100%;max-height:200px;border-radius:10px}
progress{width:100%}`;

  // Skeleton: static text only, dynamic text is always set as text.
  const host = h('talia-widget');
  host.style.cssText = 'all:initial';
  const sh = host.attachShadow({ mode: 'open' });
  const root = h('div', { class: 'w', lang: LC });
  root.style.setProperty('--c', COLOR);
  const badge = h('span', { class: 'bd', hidden: true, 'aria-hidden': 'true' });
  const ln = h('button', { class: 'ln', type: 'button', 'aria-expanded': 'false', 'aria-controls': 'p', 'aria-label': t('open'), onclick: () => toggle(), onkeydown: e => { if (e.key === 'Escape') close(); } }, icon, badge);
  const title = h('h2', { id: 'h' }, D.title || 'TalIA');
  const bX = h('button', { class: 'x', type: 'button', 'aria-label': t('close'), onclick: () => close() }, '×');
  const bHuman = h('button', { class: 'hb', type: 'button', onclick: () => human() }, t('human'));
  const bStop = h('button', { type: 'button', hidden: true, onclick: () => stopWaiting() }, t('stop'));
  const bEnd = h('button', { type: 'button', hidden: true, onclick: () => { conf.hidden = false; bNo.focus(); } }, t('end'));
  const bYes = h('button', { class: 'b p', type: 'button', onclick: () => endChat() }, t('yes'));
  const bNo = h('button', { class: 'b', type: 'button', onclick: () => { conf.hidden = true; bEnd.focus(); } }, t('cancel'));
  const conf = h('div', { class: 'bar', role: 'group', 'aria-label': t('endQ'), hidden: true }, h('p', {}, t('endQ')), h('div', { class: 'bt' }, bYes, bNo));
  const cVer = h('span');
  const cTx = h('span', {}, t('consent'));
  const cBar = h('div', { class: 'bar', hidden: true }, h('p', {}, cTx, ' ', cVer),
    h('div', { class: 'bt' }, h('button', { class: 'b p', type: 'button', onclick: () => consent(true) }, t('accept')),
      h('button', { class: 'b', type: 'button', onclick: () => consent(false) }, t('decline'))));
  const net = h('div', { class: 'bar', role: 'status', hidden: true }, t('reconn'));
  const log = h('div', { class: 'lg', role: 'log', 'aria-live': 'polite', 'aria-label': t('log'), tabindex: '0' });
  // "Continue on WhatsApp": a wa.me link to the business's number, when the server's config names one.
  const waLink = h('a', { class: 'b', hidden: true, rel: 'noopener noreferrer', target: '_blank' }, t('wa'));
  const choice = h('div', { class: 'bar ch', hidden: true }, h('p', {}, t('choose')),
    h('div', { class: 'bt' }, h('button', { class: 'b p', type: 'button', onclick: () => { choice.hidden = true; chosen = 1; ta.focus(); } }, t('withBot')),
      h('button', { class: 'b', type: 'button', onclick: () => human() }, t('human')), waLink));
  const typTx = h('span');
  const typ = h('div', { class: 'ty', role: 'status', hidden: true }, typTx, h('i'), h('i'), h('i'));
  const ta = h('textarea', { rows: '1', maxlength: '4000', 'aria-label': t('msg'), placeholder: t('ph'), oninput: onInput, onkeydown: e => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  } });
  const bSend = h('button', { class: 'b p', type: 'submit' }, t('send'));
  // Files: the server decides the type by content; `accept` only narrows the picker.
  const fIn = h('input', { type: 'file', hidden: true, accept: 'image/jpeg,image/png,image/webp,image/gif,application/pdf', onchange: () => attach(fIn.files[0]) });
  const bAtt = h('button', { class: 'b c', type: 'button', 'aria-label': t('att'), title: t('att'), onclick: () => fIn.click() }, '📎');
  const form = h('form', { class: 'fm', onsubmit: e => { e.preventDefault(); submit(); } }, bAtt, fIn, ta, bSend);
  const pn = h('div', { class: 'pn', id: 'p', role: 'dialog', 'aria-labelledby': 'h', hidden: true, onkeydown: e => {
    if (e.key === 'Tab') trap(e);
    if (e.key !== 'Escape' || PAGE) return;
    e.stopPropagation();
    if (!conf.hidden) { conf.hidden = true; bEnd.focus(); } else close();
  } }, h('div', { class: 'hd' }, title, bX, h('div', { class: 'ac' }, bHuman, bStop, bEnd)), conf, cBar, net, log, choice, typ, form);
  const sr = h('div', { class: 'sr', role: 'status' });
  root.append(ln, pn, sr);
  if (PAGE) root.classList.add('fp');
  // A constructed sheet also works under a strict style-src CSP; <style> is the fallback.
  try { const ss = new CSSStyleSheet(); ss.replaceSync(CSS_TEXT); sh.adoptedStyleSheets = [ss]; } catch (e) { sh.append(h('style', {}, CSS_TEXT)); }
  sh.append(root);

  // State.
  let isOpen = 0, booted = 0, chosen = 0, unread = 0, waiting = 0, status = null, conv = null, top = 0;
  let agentName = '', again = null, cfg = {}, answered = 0, cst = null, gr = null;
  const seen = new Map(), secs = new Map(), pend = [];
  let sec = newSec();

  async function api(method, path, body) {
    const hd = { Accept: 'application/json' };
    if (body) hd['Content-Type'] = 'application/json';
    if (TOKEN) hd['X-TalIA-Token'] = TOKEN;
    const r = await fetch(BASE + path, { method, headers: hd, body: body && JSON.stringify(body), credentials: 'omit' });
    let j = null;
    try { j = await r.json(); } catch (e) { /* not JSON */ }
    return { ok: r.ok, status: r.status, j, retry: +r.headers.get('Retry-After') || 0 };
  }
  const errText = r => (r && r.status === 429 ? t('wait', { s: r.retry || 5 }) : r && (r.status === 413 || r.status === 415) ? t('bad')
    : /^(invalid_token|origin_not_allowed)$/.test(r && r.j && r.j.error && r.j.error.code) ? t('denied') : null);

  // Message list: one section per conversation, elements ordered by data-k (seq, or provisional).
  function newSec() { const s = h('div', { class: 'sc' }); log.append(s); return s; }
  function useConv(id) {
    if (id === conv) return;
    if (sec.dataset.c) sec = newSec();
    sec.dataset.c = id;
    secs.set(id, sec);
    conv = id;
    top = 0;
    if (again) { again.remove(); again = null; }
    setStatus(status === 'closed' ? null : status);
    wsSend({ type: 'resume', after: 0 });
  }
  function place(s, el, k, when) {
    const near = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    if (k == null) k = Math.max(0, ...[...s.children].map(c => +c.dataset.k || 0)) + 0.001;
    el.dataset.k = k;
    if (when && !s.dataset.d) { s.dataset.d = 1; s.prepend(h('div', { class: 'dt' }, df.format(when))); }
    s.insertBefore(el, [...s.children].find(c => c.dataset.k != null && +c.dataset.k > k) || null);
    if (near || el.classList.contains('u')) log.scrollTop = log.scrollHeight;
  }
  function date(v) { const d = new Date(v || Date.now()); return isNaN(d) ? new Date() : d; }
  function cites(list) {
    const ul = h('ul', { class: 'cs', 'aria-label': t('sources') });
    for (const c of Array.isArray(list) ? list : []) {
      let u;
      try { u = new URL(String(c && c.url)); } catch (e) { continue; }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') continue;
      ul.append(h('li', {}, h('a', { href: u.href, rel: 'noopener noreferrer nofollow', target: '_blank' }, String(c.title || '').trim() || u.hostname)));
    }
    return ul.firstChild ? ul : null;
  }
  function msgEl(m) {
    const who = m.sender, u = who === 'contact', d = date(m.created);
    if (who === 'system') return h('div', { class: 'n' }, String(m.text ?? ''));
    const lab = u ? t('you') : who === 'agent' ? m.agent_name || agentName || t('agent') : t('bot');
    return h('div', { class: u ? 'm u' : 'm' }, m.text || !m.attachments ? h('div', { class: 'tx' }, String(m.text ?? '')) : null, files(m.attachments), cites(m.citations),
      h('div', { class: 'mt' }, lab + ' · ', h('time', { datetime: d.toISOString() }, tf.format(d))));
  }
  // Files as DOM: an image in an <img> (alt: its name), anything else a link; only TalIA's signed paths.
  function files(list) {
    const d = h('div', { class: 'fs' });
    for (const a of Array.isArray(list) ? list : []) {
      if (!/^\/api\/webchat\/attachments\//.test(a && a.url)) continue;
      const u = BASE + a.url, n = String(a.name || t('file'));
      d.append(h('a', { href: u, target: '_blank', rel: 'noopener noreferrer' }, /^image\//.test(a.content_type) ? h('img', { src: u, alt: n }) : '📎 ' + n));
    }
    return d.firstChild ? d : null;
  }
  function fail(p, r, f) {
    p.el.classList.add('fl');
    p.er = h('div', { class: 'er', role: 'alert' }, errText(r) || t('failed'), h('button', { type: 'button', onclick: () => f(p) }, t('retry')));
    p.el.append(p.er);
  }
  function done(p, id) {
    p.el.classList.remove('sd', 'fl');
    p.er && p.er.remove();
    if (id) { p.el.dataset.id = id; seen.set(id, p.el); }
  }
  // Render a stored message once (ids dedupe REST, history and socket); adopt our own optimistic copy.
  function add(m, live) {
    if (!m || !m.id) return;
    const c = m.conversation_id;
    if (c && !secs.has(c)) useConv(c);
    if (m.seq > top && (!c || c === conv)) top = m.seq;
    let el = seen.get(m.id);
    if (!el && m.sender === 'contact') {
      const i = pend.findIndex(p => p.text === String(m.text).trim());
      if (i > -1) { el = pend[i].el; done(pend.splice(i, 1)[0], m.id); }
    }
    if (el) { if (m.seq != null) el.dataset.k = m.seq; return; }
    if (sb && m.sender !== 'contact') { sb.el.remove(); sb = 0; }
    el = msgEl(m);
    seen.set(m.id, el);
    place(secs.get(c) || sec, el, m.seq, date(m.created));
    choice.hidden = true;
    if (m.sender === 'agent' && m.agent_name) agentName = m.agent_name;
    if (m.sender !== 'contact') {
      waiting = 0;
      typing(0);
      if (live && !isOpen) { unread++; badgeUpd(); }
    }
  }
  function note(s, x) {
    for (let e = sec.lastElementChild; e && e.classList.contains('n'); e = e.previousElementSibling) if (e.firstChild.nodeValue === s) return;
    place(sec, h('div', { class: 'n' }, s, x));
  }
  // A reply still being written (message.delta): one bubble, hidden from screen readers, that the stored
  // message replaces; a lost or late delta freezes it until then.
  let sb = 0;
  function delta(v) {
    if (seen.has(v.stream)) return;
    if (!sb || sb.id !== v.stream) { sb && sb.el.remove(); sb = { id: v.stream, n: 0, x: '', el: msgEl({ sender: 'assistant' }) }; sb.el.hidden = true; sb.el.setAttribute('aria-hidden', 'true'); place(sec, sb.el); }
    if (v.seq !== sb.n + 1 && !(v.reset && v.seq > sb.n)) return;
    const near = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    sb.n = v.seq;
    sb.el.firstChild.textContent = sb.x = (v.reset ? '' : sb.x) + String(v.text ?? '');
    sb.el.hidden = !sb.x;
    if (near) log.scrollTop = log.scrollHeight;
  }
  let typT;
  function typing(on, who) {
    clearTimeout(typT);
    typ.hidden = !on;
    if (!on) return;
    typTx.textContent = who === 'agent' ? t('agTyping', { n: agentName || t('agent') }) : t('botTyping');
    typT = setTimeout(typing, 60000, 0);
  }
  // Notes follow the state, not the message that told us: the HTTP answer and the push can each arrive
  // first (or the push not at all, when the socket joined the conversation after it), and the visitor
  // reads "back with the assistant" once either way. `quiet` when another message already says why.
  function setStatus(s, quiet) {
    const was = status;
    status = s;
    if (!quiet && s === 'bot' && (was === 'queued' || was === 'agent')) note(t('back'));
    const closed = s === 'closed';
    bHuman.hidden = closed || s === 'queued' || s === 'agent';
    bStop.hidden = s !== 'queued';
    bEnd.hidden = closed || !conv;
    ta.disabled = bSend.disabled = bAtt.disabled = closed;
    if (!closed || was === 'closed') return;
    conf.hidden = choice.hidden = true;
    waiting = 0;
    typing(0);
    again = h('button', { class: 'b', type: 'button', onclick: restart }, t('again'));
    note(t('ended'), again);
    if (cfg.csat && conv) csat();
  }
  // After the chat: a 1-5 rating (a second one replaces it) with a comment, and the transcript by email.
  function csat() {
    const id = conv, st = h('p', { role: 'status' });
    let sc = 0;
    const go = async (path, body, ok) => {
      let r = null;
      try { r = await api('POST', path, { session_id: sid, ...body }); } catch (e) { /* offline */ }
      st.textContent = r && r.ok ? ok : errText(r) || t('err');
      if (r && r.status === 422) em.focus(); // no address known: ask for one
    };
    const rate = () => (sc ? go('/api/webchat/rating', { conversation_id: id, score: sc, comment: cm.value }, t('thx')) : (st.textContent = t('rateQ')));
    const nums = [1, 2, 3, 4, 5].map(n => h('button', { class: 'b', type: 'button', 'aria-pressed': 'false', 'aria-label': t('rate', { n }), onclick: () => {
      sc = n;
      nums.forEach((b, i) => b.setAttribute('aria-pressed', i + 1 === n));
      rate();
    } }, String(n)));
    const cm = h('textarea', { rows: '2', maxlength: '1000', 'aria-label': t('cmt'), placeholder: t('cmt') });
    const em = h('input', { type: 'email', maxlength: '254', autocomplete: 'email', 'aria-label': t('mail'), placeholder: t('mail') });
    place(sec, h('div', { class: 'n rt', role: 'group', 'aria-label': t('rateQ') }, t('rateQ'), h('div', { class: 'bt' }, ...nums), cm,
      h('button', { class: 'b', type: 'button', onclick: rate }, t('rSend')), em,
      h('button', { class: 'b', type: 'button', onclick: () => go('/api/webchat/transcript', { conversation_id: id, ...(em.value.trim() ? { email: em.value.trim() } : {}) }, t('sent')) }, t('tr')), st));
  }
  function restart() {
    again && again.remove();
    again = null;
    sec = newSec();
    conv = null;
    top = 0;
    setStatus(null);
    chosen = 0;
    showChoice();
    ta.focus();
  }
  function showChoice() { choice.hidden = !((D.choice ? D.choice === 'true' : cfg.offer_choice) && !chosen && !form.hidden && status !== 'closed' && !sec.querySelector('.m')); }
  function badgeUpd() {
    badge.hidden = !unread;
    badge.textContent = unread > 9 ? '9+' : String(unread);
    ln.setAttribute('aria-label', isOpen ? t('close') : unread ? t('openN', { n: unread }) : t('open'));
  }

  // REST.
  async function sync() {
    for (let i = 0; i < 20; i++) {
      const after = conv ? top : 0;
      let r;
      try { r = await api('GET', `/api/webchat/messages?session_id=${enc(sid)}&limit=100${after ? '&after=' + after : ''}`); } catch (e) { return; }
      const j = r.ok && r.j;
      if (!j) return;
      if (j.conversation_id && j.conversation_id !== conv) { useConv(j.conversation_id); if (after) continue; }
      for (const m of j.messages || []) add(m, booted);
      if (j.status) setStatus(j.status);
      if (j.consent) consented(j.consent);
      if (!j.has_more || !(j.messages || []).length) break;
    }
    showChoice();
  }
  function submit() {
    const text = ta.value.trim();
    if (!text || ta.disabled) return;
    ta.value = '';
    grow();
    stopTyping();
    choice.hidden = true;
    chosen = 1;
    const p = { cid: rid(), text, el: msgEl({ sender: 'contact', text }) };
    pend.push(p);
    place(sec, p.el, null, new Date());
    boot();
    post(p);
  }
  async function post(p) {
    done(p);
    p.el.classList.add('sd');
    if (status !== 'queued' && status !== 'agent') typing(1, 'assistant');
    let r = null;
    try { r = await api('POST', '/api/webchat/messages', { session_id: sid, author: 'user', content: p.text, locale: LC, client_message_id: p.cid, page: /^https?:/.test(location.href) ? location.href.split(/[?#]/)[0].slice(0, 500) : '' }); } catch (e) { /* offline */ }
    p.el.classList.remove('sd');
    if (!r || !r.ok) { typing(0); return fail(p, r, post); }
    const j = r.j || {}, md = j.metadata || {};
    if (md.conversation_id) {
      if (!secs.has(md.conversation_id)) useConv(md.conversation_id);
      if (p.el.parentNode !== sec && pend.includes(p)) place(sec, p.el, null);
    }
    const i = pend.indexOf(p);
    if (i > -1) { pend.splice(i, 1); done(p, md.last_message_id); }
    if (j.reply) add({ id: md.assistant_message_id || rid(), conversation_id: md.conversation_id, sender: 'assistant', text: j.reply, citations: md.citations }, 1);
    else if (r.status === 202) { waiting = 1; poll(15); } else typing(0);
    if (md.status) setStatus(md.status === 'pending' ? 'bot' : md.status);
  }
  // A file is sent as soon as it is picked, with progress, and retried like a text (same client id).
  function attach(f) {
    fIn.value = '';
    if (!f || ta.disabled) return;
    choice.hidden = true;
    chosen = 1;
    const p = { cid: rid(), f, el: msgEl({ sender: 'contact', text: f.name }) };
    place(sec, p.el, null, new Date());
    boot();
    upload(p);
  }
  function upload(p) {
    done(p);
    const x = new XMLHttpRequest(), fd = new FormData(), pr = h('progress', { max: 1, value: 0, 'aria-label': p.f.name });
    for (const [k, v] of [['session_id', sid], ['client_message_id', p.cid], ['locale', LC], ['file', p.f]]) fd.append(k, v);
    p.el.classList.add('sd');
    p.el.append(pr);
    x.open('POST', BASE + '/api/webchat/attachments');
    if (TOKEN) x.setRequestHeader('X-TalIA-Token', TOKEN);
    x.upload.onprogress = e => { pr.value = e.loaded / e.total; };
    x.onloadend = () => {
      let j = null;
      try { j = JSON.parse(x.responseText); } catch (e) { /* not JSON */ }
      pr.remove();
      p.el.classList.remove('sd');
      if (x.status > 299 || !j || !j.message) return fail(p, { status: x.status, j, retry: +x.getResponseHeader('Retry-After') }, upload);
      p.el.remove();
      add(j.message);
      if (j.status) setStatus(j.status);
      if (!wsOk) sync();
    };
    x.send(fd);
  }
  // A pending reply: without a live socket it is fetched from the history; with one, a silence of 8 s
  // (no message pushed) means its push may be lost, and the socket is asked to resume after the last seq.
  function poll(n) {
    setTimeout(async () => {
      if (!waiting) return;
      if (!wsOk) await sync();
      else if (Date.now() - heard > 8000) wsSend({ type: 'resume', after: top });
      if (waiting && n) poll(n - 1);
      else if (waiting) { waiting = 0; typing(0); }
    }, 4000);
  }
  async function human() {
    choice.hidden = true;
    chosen = 1;
    boot();
    bHuman.disabled = true;
    let r = null;
    try { r = await api('POST', '/api/webchat/handoff', { session_id: sid }); } catch (e) { /* offline */ }
    bHuman.disabled = false;
    if (!r || !r.ok) { note(errText(r) || t('err')); return; }
    const j = r.j || {};
    if (j.status === 'queued') {
      if (status !== 'queued') note(t('waiting'));
      setStatus('queued');
      if (j.out_of_hours) {
        note(j.back_at ? t('away', { w: when(j.back_at) }) : t('noAgents'));
        place(sec, mkForm(['email', 'phone'], [], t('leave'), 'callback', () => ta.focus()));
      } else if (j.agents_online === 0) note(t('noAgents') + (j.queue_timeout_s > 0 ? ' ' + t('fallback', { m: Math.ceil(j.queue_timeout_s / 60) }) : ''));
    }
    await sync();
    if (j.status && status !== 'closed') setStatus(j.status);
    ta.focus();
  }
  async function stopWaiting() {
    bStop.disabled = true;
    let r = null;
    try { r = await api('POST', '/api/webchat/handoff/cancel', { session_id: sid }); } catch (e) { /* offline */ }
    bStop.disabled = false;
    if (!r || !r.ok) { note(errText(r) || t('err')); return; }
    if (r.j && r.j.status && status !== 'closed') setStatus(r.j.status);
    ta.focus();
  }
  async function endChat() {
    conf.hidden = true;
    let r = null;
    try { r = await api('POST', '/api/webchat/close', { session_id: sid }); } catch (e) { /* offline */ }
    if (r && r.ok && r.j && r.j.closed === false && r.j.end_requested) { note(agentName ? t('endAsk', { n: agentName }) : t('endAskT')); ta.focus(); }
    else if (r && r.ok) { setStatus('closed'); again && again.focus(); } else { note(errText(r) || t('err')); bEnd.focus(); }
  }
  async function loadCfg() {
    let r = null;
    try { r = await api('GET', '/api/webchat/config?locale=' + LC); } catch (e) { /* offline */ }
    if (!r || !r.ok || !r.j) return;
    cfg = r.j;
    if (!D.title && cfg.business_name) title.textContent = cfg.business_name;
    if (/^https:\/\/wa\.me\/\d{6,15}$/.test(String(cfg.whatsapp_url || ''))) { waLink.href = cfg.whatsapp_url; waLink.hidden = false; }
    if (cfg.consent_text) cTx.textContent = String(cfg.consent_text); // the business's own notice
    const v = String(cfg.consent_version || '');
    if (cfg.require_consent && !answered && !(sget(CK) || '').startsWith(v + '|')) { cVer.textContent = v ? t('ver', { v }) : ''; askConsent(); }
    first();
  }
  function askConsent() { cBar.hidden = false; sr.textContent = cTx.textContent; }
  // First minute: greeting, pre-chat form, choice.
  function first() {
    if (seen.size || pend.length || gr) return showChoice();
    const m = cfg.reply_minutes, w = cfg.next_opening;
    log.prepend(gr = h('div', { class: 'tx g' }, cfg.greeting || t('greet', { b: cfg.business_name }),
      cfg.open_now ? m ? '\n' + t('eta', { m }) : '' : w ? '\n' + t('away', { w: when(w) }) : ''));
    const f = cfg.prechat_fields;
    if (f.length && sget(PK) !== sid && cst !== 'declined') {
      form.hidden = true;
      // optional: blank skips
      place(sec, mkForm(f, cfg.prechat_required, t('pre'), 'prechat', () => { sset(PK, sid); form.hidden = false; showChoice(); ta.focus(); }));
      sec.querySelector('input').focus();
    }
    showChoice();
  }
  const when = v => new Intl.DateTimeFormat(LC, { dateStyle: 'full', timeStyle: 'short', timeZone: cfg.time_zone }).format(date(v));
  const LB = { full_name: [t('name'), 'name', 'text'], email: [t('email'), 'email', 'email'], phone: [t('phone'), 'tel', 'tel'] };
  function mkForm(names, req, intro, purpose, then) {
    const er = h('p', { class: 'er', role: 'alert' }), ins = names.map(n => h('input', { name: n, type: LB[n][2], autocomplete: LB[n][1], required: req.includes(n) }));
    const f = h('form', { class: 'n pf', onsubmit: async e => {
      e.preventDefault();
      const b = { session_id: sid, purpose, locale: LC };
      for (const i of ins) b[i.name] = i.value.trim();
      let r = null;
      try { r = await api('POST', '/api/webchat/details', b); } catch (x) { /* offline */ }
      if (r && r.ok) { f.remove(); ins.some(i => i.value) && note(t('cOk')); return then(); }
      if (r && r.status === 409) { er.textContent = t('needC'); return askConsent(); }
      const fs = r && r.j && r.j.error && r.j.error.fields || {};
      for (const i of ins) fs[i.name] ? i.setAttribute('aria-invalid', 'true') : i.removeAttribute('aria-invalid');
      er.textContent = errText(r) || (r ? t('badD') : t('err'));
    } }, h('p', {}, intro), ...names.map((n, i) => h('label', {}, LB[n][0], ins[i])), er, h('div', { class: 'bt' }, h('button', { class: 'b p' }, t('send'))));
    return f;
  }
  // Full screen (phone, page): focus stays in the panel.
  function trap(e) {
    const f = [...pn.querySelectorAll('button,textarea,input,a,[tabindex]')].filter(x => !x.disabled && x.offsetParent), a = f[0], z = f.pop();
    if ((innerWidth < 481 || PAGE) && sh.activeElement === (e.shiftKey ? a : z)) { e.preventDefault(); (e.shiftKey ? z : a).focus(); }
  }
  async function consent(granted) {
    let r = null;
    try { r = await api('POST', '/api/webchat/consent', { session_id: sid, granted }); } catch (e) { /* offline */ }
    if (!r || !r.ok) { note(errText(r) || t('err')); return; }
    const j = r.j || {};
    consented(j.consent || (granted ? 'granted' : 'declined'), j.version);
    note(t('cOk'));
    ta.focus();
  }
  // The server's one consent state (the notice, the chat or another tab answered): no notice once answered.
  function consented(state, version) {
    if (state !== 'granted' && state !== 'declined') return;
    answered = 1;
    cst = state;
    sset(CK, `${version || cfg.consent_version || ''}|${state}`);
    cBar.hidden = true;
  }

  // WebSocket: reconnect with backoff (1 s doubling to 30 s, jitter) and resume after the last seq.
  let ws = null, wsOk = 0, tries = 0, wsT, pingT, stop = 0, heard = 0;
  const wsSend = o => { if (wsOk) ws.send(JSON.stringify(o)); };
  function connect() {
    if (ws || stop) return;
    clearTimeout(wsT);
    let s;
    try {
      s = ws = new WebSocket(`${BASE.replace(/^http/, 'ws')}/ws/webchat/?session_id=${enc(sid)}${TOKEN ? '&token=' + enc(TOKEN) : ''}`);
    } catch (e) { ws = null; return retry(); }
    s.onopen = () => {
      wsOk = 1;
      tries = 0;
      net.hidden = true;
      wsSend({ type: 'resume', after: top });
      pingT = setInterval(wsSend, 25000, { type: 'ping' });
    };
    s.onmessage = e => { let v; try { v = JSON.parse(e.data); } catch (x) { return; } if (v && typeof v === 'object') onEvent(v); };
    s.onclose = e => {
      clearInterval(pingT);
      if (wsOk) net.hidden = false;
      ws = null;
      wsOk = 0;
      if (e.code === 4400 || e.code === 4401 || e.code === 4403) { stop = 1; net.hidden = true; note(t('denied')); } else retry();
    };
  }
  function retry() { const d = Math.min(30000, 1000 * 2 ** tries++); wsT = setTimeout(connect, d * (0.75 + Math.random() * 0.5)); }
  function onEvent(v) {
    const c = v.conversation_id, ty = v.type;
    if (ty === 'message.new') {
      const m = v.message;
      heard = Date.now();
      // A gap in seq means a push was lost: ask for everything after the last seen (this one included).
      if (m && c && c === conv && top && m.seq > top + 1) return wsSend({ type: 'resume', after: top });
      return add(m, 1);
    }
    if (ty === 'error') return note(v.error && v.error.code === 'rate_limited' ? t('slow') : t('err'));
    if (ty === 'consent.changed') return consented(v.consent, v.version);
    const fresh = c && !secs.has(c);
    if (fresh) useConv(c);
    if (c && c !== conv) return;
    if (ty === 'message.delta') { heard = Date.now(); return delta(v); }
    if (ty === 'typing') { if (v.sender === 'assistant' || v.sender === 'agent') typing(v.active, v.sender); return; }
    if (ty === 'handoff.requested') { if (status !== 'queued') note(t('waiting')); setStatus(v.status || 'queued'); }
    else if (ty === 'handoff.accepted') {
      if (v.agent_name) agentName = v.agent_name;
      setStatus(v.status || 'agent');
      note(t('joined', { n: agentName || t('agent') }));
    } else if (ty === 'handoff.cancelled' || ty === 'conversation.handed_back') setStatus(v.status || 'bot');
    else if (ty === 'handoff.expired') setStatus(v.status || 'bot', 1); // the assistant's message says why
    else if (ty === 'conversation.closed') setStatus('closed');
    else if (ty === 'end.declined') { if (v.agent_name) agentName = v.agent_name; if (v.status) setStatus(v.status); note(t('endNo', { n: agentName || t('agent') })); }
    // "opened" carries the status at creation; it can arrive after a newer state (the handoff's HTTP
    // answer races the push), so it only sets the status of a conversation the widget did not know yet.
    else if (ty === 'conversation.opened' && v.status && (fresh || !status)) setStatus(v.status);
  }
  addEventListener('online', () => { if (booted && !ws) { tries = 0; connect(); } });

  // Visitor typing: "active" at most every 3 s, "inactive" after 4 s without keys or on send.
  let tyAt = 0, tyT;
  function stopTyping() { clearTimeout(tyT); if (tyAt) { tyAt = 0; wsSend({ type: 'typing', active: false }); } }
  function grow() { ta.style.height = 'auto'; ta.style.height = Math.min(ta.scrollHeight + 2, 120) + 'px'; }
  function onInput() {
    grow();
    if (!ta.value.trim()) return stopTyping();
    if (Date.now() - tyAt > 3000) { tyAt = Date.now(); wsSend({ type: 'typing', active: true }); }
    clearTimeout(tyT);
    tyT = setTimeout(stopTyping, 4000);
  }

  function boot() { if (booted) return; booted = 1; loadCfg(); connect(); }
  function open() {
    if (isOpen) return;
    isOpen = 1;
    unread = 0;
    pn.hidden = false;
    root.classList.add('o');
    ln.setAttribute('aria-expanded', 'true');
    ipath.setAttribute('d', X);
    badgeUpd();
    boot();
    ta.disabled ? (again || bX).focus() : ta.focus();
    log.scrollTop = log.scrollHeight;
  }
  function close() {
    if (!isOpen || PAGE) return;
    const had = !!sh.activeElement;
    isOpen = 0;
    pn.hidden = true;
    root.classList.remove('o');
    ln.setAttribute('aria-expanded', 'false');
    ipath.setAttribute('d', CHAT);
    badgeUpd();
    if (had) ln.focus();
  }
  function toggle() { isOpen ? close() : open(); }
  window.TalIA = Object.freeze({ open, close, toggle });
  // Leaving the page records a session closure (a dashboard figure); the chat itself goes on.
  addEventListener('pagehide', () => { if (conv && status !== 'closed' && navigator.sendBeacon) navigator.sendBeacon(`${BASE}/api/webchat/leave?session_id=${enc(sid)}${TOKEN ? '&token=' + enc(TOKEN) : ''}`); });

  function start() {
    document.body.prepend(host); // early in the tab order
    const m = /^rgba?\((\d+)\D+(\d+)\D+(\d+)/.exec(getComputedStyle(ln).backgroundColor);
    if (m && 0.299 * m[1] + 0.587 * m[2] + 0.114 * m[3] > 165) root.style.setProperty('--f', '#111');
    if (known) sync().then(() => { if (conv && status !== 'closed') connect(); });
    else showChoice();
    if (D.open === 'true' || PAGE) open();
  }
  document.body ? start() : addEventListener('DOMContentLoaded', start);
})();

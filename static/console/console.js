/* TalIA agent console: the live queue (/console/) and one conversation (/console/conversations/<id>/).
   Contract: docs/console-api.md. No dependencies, no build step. The pages are rendered by Django and
   work without this script; it adds the live parts. Text from the server or the socket is only ever
   set as text (textContent, text nodes), never parsed as HTML. */
(() => {
  'use strict';
  const root = document.getElementById('console');
  if (!root) return;

  const $ = id => document.getElementById(id);
  const LANG = (document.documentElement.lang || 'es').toLowerCase();
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  // Shared with the other staff pages: static/console/kit.js.
  const { strings: STRINGS, t, h, show, store, csrfToken, api } = window.TalIAKit;

  // Label colours come as data (no inline styles, for the Content-Security-Policy).
  for (const el of document.querySelectorAll('.dot[data-colour]')) {
    if (/^#[0-9a-fA-F]{6}$/.test(el.dataset.colour)) el.style.setProperty('--dot', el.dataset.colour);
  }

  // --- Socket: reconnect with backoff, 1 s doubling to 30 s; each page resynchronises on reopen ----------
  const connection = $('connection');
  let ws = null, wsOpen = false, tries = 0, opened = 0, stopped = false, leaving = false, retryTimer, pingTimer, stableTimer;
  let onOpen = () => {}, onEvent = () => {};
  const wsSend = obj => {
    if (!wsOpen) return false;
    ws.send(JSON.stringify(obj));
    return true;
  };
  function connect() {
    if (ws || stopped) return;
    clearTimeout(retryTimer);
    let s;
    try {
      s = ws = new WebSocket((location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + (root.dataset.socket || '/ws/console/'));
    } catch (e) {
      ws = null;
      retry();
      return;
    }
    s.onopen = () => {
      wsOpen = true;
      // The backoff starts again only once a connection has lasted: a server that accepts and then
      // drops every socket is retried ever more slowly.
      stableTimer = setTimeout(() => { tries = 0; }, 10000);
      show(connection, '');
      pingTimer = setInterval(wsSend, 25000, { type: 'ping' });
      onOpen(opened++ > 0);
    };
    s.onmessage = e => {
      let v;
      try { v = JSON.parse(e.data); } catch (x) { return; }
      if (!v || typeof v !== 'object' || typeof v.type !== 'string') return;
      if (v.type === 'note.added' && v.note && v.note.kind === 'whisper' && v.conversation_id !== root.dataset.conversationId) whispered(v);
      onEvent(v);
    };
    s.onclose = e => {
      clearInterval(pingTimer);
      clearTimeout(stableTimer);
      ws = null;
      wsOpen = false;
      if (leaving) return;
      if (e.code === 4401 || e.code === 4403) {
        stopped = true;
        show(connection, t(e.code === 4401 ? 'signedOut' : 'forbidden'));
        return;
      }
      show(connection, t('reconnecting'));
      retry();
    };
  }
  function retry() {
    const delay = Math.min(30000, 1000 * 2 ** tries);
    tries += 1;
    retryTimer = setTimeout(connect, delay);
  }
  addEventListener('online', () => { if (!ws && !stopped) { tries = 0; connect(); } });
  addEventListener('pagehide', () => { leaving = true; });
  addEventListener('pageshow', e => { if (e.persisted) { leaving = false; connect(); } });

  const conversationUrl = id => '/console/conversations/' + encodeURIComponent(id) + '/';
  const apiUrl = (id, action) => '/console/api/conversations/' + encodeURIComponent(id) + '/' + action;

  // A supervisor's whisper about a conversation other than the one on screen: a banner with a link.
  function whispered(v) {
    const box = $('whisper-alert');
    if (!box || !UUID.test(v.conversation_id || '')) return;
    $('whisper-alert-from').textContent = t('whisperFrom', { name: v.note.author_name || '?' });
    $('whisper-alert-text').textContent = String(v.note.text ?? '');
    $('whisper-alert-link').href = conversationUrl(v.conversation_id);
    box.hidden = false;
  }
  if ($('whisper-alert-dismiss')) $('whisper-alert-dismiss').addEventListener('click', () => { $('whisper-alert').hidden = true; });

  // Waiting times are counted on the server's clock: the page says what time it was when rendered.
  const serverNow = Date.parse(root.dataset.now || '');
  const skew = isNaN(serverNow) ? 0 : serverNow - Date.now();
  const now = () => Date.now() + skew;
  function minutes(ms) {
    const m = Math.floor(Math.max(0, ms) / 60000);
    if (m < 1) return t('lessThanMinute');
    const unit = (n, u) => {
      try { return new Intl.NumberFormat(LANG, { style: 'unit', unit: u, unitDisplay: 'short' }).format(n); } catch (e) { return n + (u === 'hour' ? ' h' : ' min'); }
    };
    return m < 60 ? unit(m, 'minute') : unit(Math.floor(m / 60), 'hour') + (m % 60 ? ' ' + unit(m % 60, 'minute') : '');
  }
  const channelLabel = channel => STRINGS['channel.' + channel] || String(channel || '');

  // Pages without a JSON snapshot catch up after a lost connection by reloading, at most once a minute
  // so a flapping connection cannot turn into a reload loop. `beforeReload` may remember something.
  const RELOAD_KEY = 'talia.console.reloaded';
  function reloadOnReconnect(reconnected, beforeReload) {
    const last = Number(store('sessionStorage', RELOAD_KEY)) || 0;
    if (!reconnected || Math.abs(Date.now() - last) < 60000) return;
    store('sessionStorage', RELOAD_KEY, String(Date.now()));
    if (beforeReload) beforeReload();
    location.reload();
  }


  // --- Unread messages in my conversations ---------------------------------------------------------------
  // Counted per conversation in this tab's sessionStorage (no server state: each tab of the console keeps
  // its own), shown on the queue page's rows and in the tab title, reset when the conversation is viewed.
  // A new message from the contact in one of my conversations chimes and raises a desktop notification,
  // switched by the queue page's sound toggle and notification permission.
  const UNREAD_KEY = 'talia.console.unread', SOUND_ON = 'talia.console.sound';
  const titleBase = document.title;
  let titleExtra = 0; // the queue page adds its queue length
  function unreadAll() {
    let v = null;
    try { v = JSON.parse(store('sessionStorage', UNREAD_KEY) || '{}'); } catch (e) { /* ignore */ }
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  }
  function unreadSet(id, n) {
    const v = unreadAll();
    if (n > 0) v[id] = n; else delete v[id];
    store('sessionStorage', UNREAD_KEY, JSON.stringify(v));
    showUnread();
  }
  function showUnread() {
    const v = unreadAll();
    let total = 0;
    for (const n of Object.values(v)) total += Number(n) || 0;
    const n = total + titleExtra;
    document.title = n ? '(' + n + ') ' + titleBase : titleBase;
    const list = $('mine-list');
    for (const li of list ? list.querySelectorAll('li[data-conversation-id]') : []) {
      const count = Number(v[li.dataset.conversationId]) || 0;
      let badge = li.querySelector('.unread');
      if (!badge && count) badge = li.querySelector('.who').appendChild(h('span', { class: 'unread' }));
      if (badge) {
        badge.textContent = count ? t('unread', { count }) : '';
        badge.hidden = !count;
      }
    }
  }
  const titleWith = n => { titleExtra = n; showUnread(); };
  let chimeAudio = null;
  function chime() {
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      chimeAudio = chimeAudio || new Ctx();
      if (chimeAudio.state === 'suspended') chimeAudio.resume().catch(() => {});
      const at = chimeAudio.currentTime, osc = chimeAudio.createOscillator(), gain = chimeAudio.createGain();
      osc.frequency.setValueAtTime(660, at);
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.15, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.2);
      osc.connect(gain).connect(chimeAudio.destination);
      osc.start(at);
      osc.stop(at + 0.22);
    } catch (e) { /* no audio: the count is enough */ }
  }
  function myMessages() {
    const here = root.dataset.page === 'conversation' ? root.dataset.conversationId : '';
    const counted = new Set();
    // My other open conversations: the queue page's rows, or what the conversation page was rendered with.
    const others = String(root.dataset.mineElsewhere || '').split(',').filter(x => UUID.test(x));
    const mine = () => here ? others : [...document.querySelectorAll('#mine-list li[data-conversation-id]')].map(li => li.dataset.conversationId);
    function arrived(v) {
      const m = v.message, id = String(v.conversation_id || '');
      if (!m || m.sender !== 'contact' || !UUID.test(id) || counted.has(String(m.id))) return;
      counted.add(String(m.id));
      if (id === here ? root.dataset.mine !== 'true' : !mine().includes(id)) return;
      if (id === here && !document.hidden) return; // read as it arrives
      unreadSet(id, (Number(unreadAll()[id]) || 0) + 1);
      if (store('localStorage', SOUND_ON) === 'on') chime();
      if ('Notification' in window && Notification.permission === 'granted') {
        try {
          const who = id === here ? document.querySelector('.console-bar h1') : document.querySelector('#mine-list li[data-conversation-id="' + id + '"] .contact');
          const n = new Notification(t('newMessageFrom', { name: who ? who.textContent : STRINGS['sender.contact'] || '' }), { body: String(m.text || '').slice(0, 140), tag: 'talia-message-' + id, lang: LANG });
          n.onclick = () => { window.focus(); if (id !== here) location.href = conversationUrl(id); n.close(); };
        } catch (e) { /* some browsers only notify from a service worker */ }
      }
    }
    const pageEvent = onEvent, pageOpen = onOpen;
    onEvent = v => {
      if (v.type === 'message.new') arrived(v);
      pageEvent(v);
    };
    // The socket follows my other conversations too (the conversation page already follows its own).
    onOpen = reconnected => {
      pageOpen(reconnected);
      for (const id of mine()) wsSend({ type: 'watch', conversation_id: id });
    };
    if (here) {
      unreadSet(here, 0);
      document.addEventListener('visibilitychange', () => { if (!document.hidden) unreadSet(here, 0); });
    }
    showUnread();
  }

  // --- The contact sidebar (conversation page): fields saved through the console API, the lead's stage ------
  function contactSidebar() {
    const form = $('contact-form'), status = $('contact-status'), formError = $('contact-error');
    const inputs = [...form.querySelectorAll('input[name]')];
    form.addEventListener('submit', async e => {
      e.preventDefault();
      const changed = {};
      for (const input of inputs) {
        show($('contact-' + input.name + '-error'), '');
        if (input.value.trim() !== input.dataset.saved) changed[input.name] = input.value;
      }
      show(formError, '');
      if (!Object.keys(changed).length) { status.textContent = t('nothingChanged'); return; }
      status.textContent = '';
      $('contact-save').disabled = true;
      const r = await api('PATCH', apiUrl(root.dataset.conversationId, 'contact'), changed);
      $('contact-save').disabled = false;
      if (!r.ok) {
        const fields = r.fields;
        let shown = false;
        for (const [name, errors] of Object.entries(fields)) {
          const el = $('contact-' + name + '-error');
          if (el && inputs.some(i => i.name === name)) { show(el, [].concat(errors).join(' ')); shown = true; }
        }
        if (!shown) show(formError, r.error);
        return;
      }
      // Never overwrite silently: what each field held before is shown under it.
      for (const [name, before] of Object.entries(r.data.previous || {})) {
        const input = inputs.find(i => i.name === name);
        if (!input) continue;
        show($('contact-' + name + '-previous'), before ? t('was', { value: before }) : t('wasEmpty'));
      }
      for (const input of inputs) {
        const value = String((r.data.contact || {})[input.name] ?? input.dataset.saved);
        input.value = input.dataset.saved = value;
      }
      if (r.data.contact && r.data.contact.name) document.querySelector('.console-bar h1').textContent = String(r.data.contact.name);
      status.textContent = t('saved');
    });
    const stage = $('lead-stage');
    if (!stage) return;
    stage.dataset.current = stage.value; // also moved by liveSidebar when the stage changes elsewhere
    stage.addEventListener('change', async () => {
      stage.disabled = true;
      const r = await api('POST', stage.dataset.url, { stage: stage.value });
      stage.disabled = false;
      show($('lead-stage-error'), r.ok ? '' : [].concat(r.fields.stage || r.error).join(' '));
      if (!r.ok) { stage.value = stage.dataset.current; return; }
      stage.dataset.current = stage.value;
      const placeholder = stage.querySelector('option[value=""]');
      if (placeholder) placeholder.remove();
      $('lead-stage-status').textContent = t('saved');
    });
  }

  // --- Auto-assignment offers (conversations.assignment): a prompt with Accept / Decline and a countdown --------
  // Offers arrive as `offer.made` pushes on this agent's sockets and go away with `offer.withdrawn`; a socket
  // that (re)opens asks /console/api/offers for those still open. One is shown at a time, oldest first.
  function offerPrompt() {
    const box = $('offer-prompt');
    if (!box) return;
    const offers = new Map(); // offer_id -> the offer.made push
    const accept = $('offer-accept'), decline = $('offer-decline'), error = $('offer-error');
    let shownId = null, tick = null;
    const fill = (text, vars) => String(text || '').replace(/\{(\w+)\}/g, (m, k) => (vars && vars[k] != null ? String(vars[k]) : m));
    const current = () => [...offers.values()].sort((a, b) => Date.parse(a.expires_at) - Date.parse(b.expires_at))[0] || null;
    function countdown() {
      const offer = current();
      if (!offer) return;
      const left = Math.ceil((Date.parse(offer.expires_at) - now()) / 1000);
      // Late: the server expires it and tells us; until then it cannot be accepted any more.
      if (left <= 0) { offers.delete(offer.offer_id); render(); return; }
      $('offer-countdown').textContent = fill(box.dataset.countdown, { seconds: left });
    }
    function render() {
      const offer = current();
      clearInterval(tick);
      if (!offer) { box.hidden = true; shownId = null; return; }
      if (offer.offer_id !== shownId) {
        shownId = offer.offer_id;
        $('offer-contact').textContent = String(offer.contact_name || '');
        $('offer-channel').textContent = channelLabel(offer.channel);
        $('offer-team').textContent = String(offer.team_name || '');
        $('offer-team').hidden = !offer.team_name;
        show(error, '');
        accept.disabled = decline.disabled = false;
      }
      const more = offers.size - 1;
      $('offer-more').textContent = more > 0 ? fill(box.dataset.more, { count: more }) : '';
      $('offer-more').hidden = more <= 0;
      box.hidden = false;
      countdown();
      tick = setInterval(countdown, 1000);
    }
    function alertAgent(offer) {
      if (store('localStorage', SOUND_ON) === 'on') chime();
      if (!document.hidden || !('Notification' in window) || Notification.permission !== 'granted') return;
      try {
        const n = new Notification(fill(box.dataset.notification, { channel: channelLabel(offer.channel) }), { body: String(offer.contact_name || ''), tag: 'talia-offer-' + offer.offer_id, lang: LANG });
        n.onclick = () => { window.focus(); n.close(); };
      } catch (e) { /* some browsers only notify from a service worker */ }
    }
    function made(offer) {
      if (!offer || !Number.isInteger(offer.offer_id) || !UUID.test(offer.conversation_id || '')) return false;
      const fresh = !offers.has(offer.offer_id);
      offers.set(offer.offer_id, offer);
      render();
      return fresh;
    }
    async function answer(action, button) {
      const offer = current();
      if (!offer) return;
      accept.disabled = decline.disabled = true;
      const r = await api('POST', '/console/api/offers/' + encodeURIComponent(offer.offer_id) + '/' + action);
      if (r.ok && action === 'accept') { location.assign(r.data.next); return; }
      if (r.ok || r.code === 'offer_gone') {
        offers.delete(offer.offer_id);
        render();
        if (!r.ok) show(error, r.error);
        return;
      }
      accept.disabled = decline.disabled = false;
      show(error, r.error);
      button.focus();
    }
    accept.addEventListener('click', () => answer('accept', accept));
    decline.addEventListener('click', () => answer('decline', decline));
    async function sync() {
      const r = await api('GET', '/console/api/offers');
      if (!r.ok || !Array.isArray(r.data.offers)) return;
      offers.clear();
      for (const offer of r.data.offers) made(offer);
      render();
    }
    const pageEvent = onEvent, pageOpen = onOpen;
    onEvent = v => {
      if (v.type === 'offer.made') {
        if (made(v)) alertAgent(v);
      } else if (v.type === 'offer.withdrawn') {
        offers.delete(v.offer_id);
        render();
      }
      pageEvent(v);
    };
    onOpen = reconnected => {
      pageOpen(reconnected);
      sync();
    };
  }

  // --- Activity: the server counts an agent idle after TALIA_PRESENCE_IDLE_MIN without any (away for offers) ---
  // Keyboard, pointer, wheel and focus tell the socket, at most every 30 s (conversations.console.presence).
  function reportActivity() {
    let sentAt = 0;
    const used = () => {
      if (document.hidden || Date.now() - sentAt < 30000) return;
      if (wsSend({ type: 'activity' })) sentAt = Date.now();
    };
    for (const type of ['keydown', 'pointerdown', 'pointermove', 'wheel', 'focus']) addEventListener(type, used, { passive: true });
    document.addEventListener('visibilitychange', used);
  }

  // --- The contact sidebar, live ---------------------------------------------------------------------------
  // `contact.changed` (the assistant captured a detail, the consent was answered, the lead card or a meeting
  // changed) carries no data: the page asks the console API for the sidebar's data, once for a burst of
  // pushes, and sets it as text. A field the agent is editing keeps what they typed; the new value shows
  // under it.
  function liveSidebar() {
    if (!$('contact-sidebar') || root.dataset.page !== 'conversation') return;
    const id = root.dataset.conversationId;
    let timer = null, fetching = false, again = false;
    async function refresh() {
      if (fetching) { again = true; return; }
      fetching = true;
      const r = await api('GET', apiUrl(id, 'contact'));
      fetching = false;
      if (r.ok && r.data && typeof r.data === 'object') applySidebar(r.data);
      if (again) { again = false; refresh(); }
    }
    const pageEvent = onEvent, pageOpen = onOpen;
    onEvent = v => {
      if (v.type === 'contact.changed' && v.contact_id === $('contact-sidebar').dataset.contactId) {
        clearTimeout(timer);
        timer = setTimeout(refresh, 250);
      }
      pageEvent(v);
    };
    onOpen = reconnected => {
      pageOpen(reconnected);
      if (reconnected) refresh(); // what changed while the socket was down
    };
  }
  function applySidebar(data) {
    const contact = data.contact && typeof data.contact === 'object' ? data.contact : {};
    for (const input of document.querySelectorAll('#contact-form input[name]')) {
      if (!(input.name in contact)) continue;
      const value = String(contact[input.name] ?? '');
      if (value === input.dataset.saved) continue;
      if (input.value.trim() === input.dataset.saved) input.value = value; // not being edited: follow
      else show($('contact-' + input.name + '-previous'), t('changedMeanwhile', { value: value || '—' }));
      input.dataset.saved = value;
    }
    const title = document.querySelector('.console-bar h1');
    if (title && contact.name) title.textContent = String(contact.name);
    const consent = $('contact-consent');
    if (consent) consent.textContent = STRINGS['consent.' + (data.consent === 'granted' || data.consent === 'declined' ? data.consent : 'none')] || '';
    const lead = data.panels && data.panels.leads;
    if (lead && typeof lead === 'object') leadPanel(lead);
  }
  // The leads app's panel (templates/leads/_contact_panel.html): the card's stage and value, the meetings.
  function leadPanel(lead) {
    const stage = $('lead-stage'), card = lead.card;
    if (stage && card && !stage.disabled && document.activeElement !== stage) {
      if (![...stage.options].some(o => o.value === String(card.stage))) stage.append(h('option', { value: String(card.stage) }, String(card.stage_label || card.stage)));
      stage.value = stage.dataset.current = String(card.stage);
      const placeholder = stage.querySelector('option[value=""]');
      if (placeholder) placeholder.remove();
    }
    if ($('lead-value')) {
      $('lead-value-amount').textContent = card && card.value != null ? String(card.value) : '';
      $('lead-value').hidden = !(card && card.value != null);
    }
    const list = $('contact-meetings');
    if (!list || !Array.isArray(lead.meetings)) return;
    const back = typeof lead.back === 'string' ? lead.back : '';
    list.replaceChildren(...lead.meetings.filter(m => m && typeof m === 'object').map(m => meetingItem(m, back)));
    list.hidden = !list.children.length;
    $('contact-meetings-empty').hidden = !!list.children.length;
  }
  function meetingItem(m, back) {
    const path = u => (typeof u === 'string' && /^\/[^/\\]/.test(u) ? u : null); // only this site's paths
    const hidden = (name, value) => h('input', { type: 'hidden', name, value: String(value ?? '') });
    const form = (action, ...fields) => h('form', { method: 'post', action, class: 'inline' }, hidden('csrfmiddlewaretoken', csrfToken()), hidden('next', path(back) || ''), ...fields);
    const d = new Date(m.start);
    const li = h('li', { 'data-meeting-id': String(m.id || '') },
      h('time', { datetime: isNaN(d) ? null : d.toISOString() }, String(m.start_label || '')),
      ' · ' + String(m.title || '') + ' · ', h('span', { class: 'meeting-status' }, String(m.status_label || '')));
    if (path(m.confirm_url)) li.append(' ', form(path(m.confirm_url), h('button', { type: 'submit' }, t('meetingConfirm'))));
    if (path(m.reschedule_url)) {
      li.append(' ', form(path(m.reschedule_url),
        h('label', {}, t('meetingNewTime') + ' ', h('input', { type: 'datetime-local', name: 'start', required: true, value: String(m.start_input || '') })),
        ' ', h('button', { type: 'submit' }, t('meetingReschedule'))));
    }
    return li;
  }

  // --- Moving a waiting conversation to another team's queue (conversation page) -------------------------
  function moveQueueForm() {
    const form = $('move-queue-form');
    if (!form) return;
    form.addEventListener('submit', async e => {
      e.preventDefault();
      const team = $('move-queue-to').value, text = $('move-queue-note').value.trim();
      if (!team || !text) { show($('move-queue-error'), t('chooseMoveQueue')); return; }
      $('move-queue-button').disabled = true;
      const r = await api('POST', apiUrl(root.dataset.conversationId, 'transfer'), { team: Number(team), note: text });
      $('move-queue-button').disabled = false;
      if (r.ok) { location.assign(r.data.next); return; }
      show($('move-queue-error'), r.error);
    });
  }

  if (root.dataset.page === 'queue') queuePage();
  else if (root.dataset.page === 'conversation') { conversationPage(); moveQueueForm(); }
  else if (root.dataset.page === 'monitor') monitorPage();
  if (root.dataset.page === 'queue' || root.dataset.page === 'conversation') myMessages();
  if ($('contact-sidebar')) { contactSidebar(); liveSidebar(); }
  if (root.dataset.page === 'queue' || root.dataset.page === 'conversation') { offerPrompt(); reportActivity(); }
  connect();

  // --- The queue ---------------------------------------------------------------------------------------
  function queuePage() {
    const list = $('queue-list'), empty = $('queue-list-empty'), count = $('queue-count'), rowTemplate = $('queue-row-template');
    const alertBody = $('queue-alert'), alertText = $('queue-alert-text'), alertLink = $('queue-alert-link');
    const soundToggle = $('sound-toggle'), notifyButton = $('notify-button'), notifyState = $('notify-state');
    const SOUND_KEY = 'talia.console.sound', KNOWN_KEY = 'talia.console.queue';
    let alertFor = null, audio = null;

    const rows = () => [...list.children].filter(li => li.dataset.conversationId);
    const rowFor = id => rows().find(li => li.dataset.conversationId === id);

    function refreshWaits() {
      for (const li of rows()) {
        const at = Date.parse(li.dataset.queuedAt || ''), wait = li.querySelector('.wait');
        if (isNaN(at) || !wait) continue;
        wait.textContent = t('waiting', { since: minutes(now() - at) });
        li.classList.toggle('long-wait', now() - at >= 5 * 60000);
      }
    }
    function refreshCount() {
      const n = rows().length;
      count.textContent = String(n);
      count.classList.toggle('zero', !n);
      list.hidden = !n;
      empty.hidden = !!n;
      titleWith(n); // the tab title adds the unread messages of my conversations
    }

    // Alerts: a banner (role="alert"), an optional beep, and a desktop notification when allowed.
    function announce(id, channel) {
      const label = channelLabel(channel);
      alertFor = id;
      alertText.textContent = t('newWaiting', { channel: label });
      alertLink.href = conversationUrl(id);
      alertBody.hidden = false;
      if (soundToggle.checked) beep();
      if ('Notification' in window && Notification.permission === 'granted') {
        try {
          const n = new Notification(t('notificationTitle'), { body: label, tag: 'talia-queue-' + id, lang: LANG });
          n.onclick = () => { window.focus(); location.href = conversationUrl(id); n.close(); };
        } catch (e) { /* some browsers only notify from a service worker */ }
      }
    }
    function dismiss() {
      alertBody.hidden = true;
      alertFor = null;
    }
    $('queue-alert-dismiss').addEventListener('click', dismiss);

    // Browsers start audio only after a gesture on the page: the first click or key unlocks it.
    function unlockAudio() {
      try {
        const Ctx = window.AudioContext || window.webkitAudioContext;
        if (!Ctx) return null;
        audio = audio || new Ctx();
        if (audio.state === 'suspended') audio.resume().catch(() => {});
      } catch (e) { return null; }
      return audio;
    }
    for (const type of ['pointerdown', 'keydown']) addEventListener(type, () => { if (soundToggle.checked) unlockAudio(); }, { once: true });
    function beep() {
      try {
        if (!unlockAudio()) return;
        const at = audio.currentTime, osc = audio.createOscillator(), gain = audio.createGain();
        osc.type = 'sine';
        osc.frequency.setValueAtTime(880, at);
        osc.frequency.setValueAtTime(660, at + 0.12);
        gain.gain.setValueAtTime(0.0001, at);
        gain.gain.exponentialRampToValueAtTime(0.2, at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.3);
        osc.connect(gain).connect(audio.destination);
        osc.start(at);
        osc.stop(at + 0.32);
      } catch (e) { /* no audio: the banner is enough */ }
    }
    soundToggle.checked = store('localStorage', SOUND_KEY) === 'on';
    soundToggle.closest('label').hidden = false;
    soundToggle.addEventListener('change', () => {
      store('localStorage', SOUND_KEY, soundToggle.checked ? 'on' : 'off');
      // A sample now, which also unlocks audio: browsers allow it only after a user gesture.
      if (soundToggle.checked) beep();
    });

    function notifyUpdate() {
      const supported = 'Notification' in window;
      notifyButton.hidden = !supported || Notification.permission !== 'default';
      show(notifyState, supported && Notification.permission === 'denied' ? t('notificationsBlocked') : '');
    }
    notifyButton.addEventListener('click', async () => {
      try { await Notification.requestPermission(); } catch (e) { /* an old callback-only API: ignore */ }
      notifyUpdate();
    });
    notifyUpdate();

    // Teams: the agent's state (online: auto-assignment on; away/offline: none), and conversations given
    // to this agent by auto-assignment or a transfer.
    const presenceSelect = $('presence-state');
    if (presenceSelect) presenceSelect.addEventListener('change', async () => {
      presenceSelect.disabled = true;
      const r = await api('PUT', '/console/api/presence', { state: presenceSelect.value });
      presenceSelect.disabled = false;
      show($('presence-error'), r.ok ? '' : r.error);
      if (r.ok) presenceSelect.value = r.data.state;
    });
    function givenToMe(id, channel, key) {
      if (!UUID.test(id || '')) return;
      alertFor = id;
      alertText.textContent = t(key, { channel: channelLabel(channel) });
      alertLink.href = conversationUrl(id);
      alertBody.hidden = false;
      if (soundToggle.checked) beep();
    }

    function add(id, channel, name, preview, outOfHours, team, queuedAt) {
      if (!UUID.test(id || '') || rowFor(id)) return false;
      const li = rowTemplate.content.firstElementChild.cloneNode(true);
      li.dataset.conversationId = id;
      li.dataset.channel = String(channel || '');
      const since = Date.parse(queuedAt || ''); // moved from another team's queue: the wait goes on
      li.dataset.queuedAt = new Date(isNaN(since) ? now() : Math.min(since, now())).toISOString();
      li.querySelector('a').href = conversationUrl(id);
      if (name) li.querySelector('a').textContent = String(name);
      li.querySelector('.tag').textContent = channelLabel(channel);
      // The last messages, as the rendered rows show them (text as text).
      const lines = li.querySelector('.preview');
      for (const m of Array.isArray(preview) ? preview : []) {
        const sender = String(m.sender || '');
        lines.append(h('li', { class: sender }, h('span', { class: 'sender' }, (STRINGS['sender.' + sender] || sender) + ':'), ' ' + String(m.text || '')));
      }
      li.querySelector('.ooh').hidden = !outOfHours;
      if (team) { li.querySelector('.team').textContent = String(team); li.querySelector('.team').hidden = false; }
      list.append(li);
      refreshCount();
      refreshWaits();
      return true;
    }
    function remove(id) {
      const li = rowFor(id);
      if (li) li.remove();
      if (alertFor === id) dismiss();
      refreshCount();
    }

    onEvent = v => {
      const id = v.conversation_id;
      if (v.type === 'queue.added') {
        if (add(id, v.channel, v.contact_name, v.preview, v.out_of_hours, v.team_name, v.queued_at)) announce(id, v.channel);
      } else if (v.type === 'conversation.assigned') {
        remove(id);
        givenToMe(id, v.channel, 'assignedToYou');
      } else if (v.type === 'conversation.transferred') {
        if (v.to_agent_id != null && String(v.to_agent_id) === root.dataset.userId) givenToMe(id, v.channel, 'transferredToYou');
      } else if (v.type === 'queues.changed') {
        location.reload(); // the agent's teams changed: the rendered queue was for the old ones
      } else if (v.type === 'queue.removed' || v.type === 'handoff.accepted' || v.type === 'conversation.closed' || v.type === 'conversation.handed_back') {
        remove(id);
      }
    };
    // The queue has no JSON endpoint: after a lost connection the page itself is the catch-up. What
    // joined the queue meanwhile is remembered across the reload, to be announced like a live arrival.
    onOpen = reconnected => reloadOnReconnect(reconnected, () => {
      store('sessionStorage', KNOWN_KEY, JSON.stringify(rows().map(li => li.dataset.conversationId)));
    });
    let known = null;
    try { known = JSON.parse(store('sessionStorage', KNOWN_KEY) || 'null'); } catch (e) { /* ignore */ }
    store('sessionStorage', KNOWN_KEY, null);
    if (Array.isArray(known)) {
      const fresh = rows().filter(li => !known.includes(li.dataset.conversationId));
      const last = fresh[fresh.length - 1];
      if (last) announce(last.dataset.conversationId, last.dataset.channel);
    }

    refreshCount();
    refreshWaits();
    setInterval(refreshWaits, 30000);
  }

  // --- One conversation --------------------------------------------------------------------------------
  function conversationPage() {
    const id = root.dataset.conversationId;
    const log = $('messages'), typingEl = $('typing'), notice = $('notice'), noticeText = $('notice-text'), noticeReload = $('notice-reload');
    const form = $('composer'), ta = $('composer-text'), sendButton = $('send-button'), composerError = $('composer-error');
    const actions = $('actions'), actionError = $('action-error'), claimButton = $('claim-button'), claimError = $('claim-error');
    const transferForm = $('transfer-form');
    const endRequest = $('end-request'), endAccept = $('end-accept'), endDecline = $('end-decline'), endError = $('end-request-error');
    const DRAFT_KEY = 'talia.console.draft.' + id;
    const timeFormat = new Intl.DateTimeFormat(LANG, { hour: '2-digit', minute: '2-digit' });
    const fullFormat = new Intl.DateTimeFormat(LANG, { dateStyle: 'full', timeStyle: 'short' });
    const seen = new Set();
    let status = root.dataset.status, lastSeq = 0, busy = false, catchingUp = null, typingTimer;
    let lastSender = '', lastAt = Date.now(); // who spoke last, and when this page learnt of it

    // What the server rendered: remember ids and the last seq; show times in the agent's own time zone.
    for (const li of log.querySelectorAll('li[data-id]')) {
      seen.add(li.dataset.id);
      const seq = Number(li.dataset.seq) || 0;
      if (seq < lastSeq) continue;
      lastSeq = seq;
      lastSender = (/\bmsg-(\w+)/.exec(li.className) || [])[1] || '';
    }
    for (const el of log.querySelectorAll('time[datetime]')) formatTime(el);
    scrollDown();

    function formatTime(el) {
      const d = new Date(el.getAttribute('datetime'));
      if (isNaN(d)) return;
      el.textContent = timeFormat.format(d);
      el.title = fullFormat.format(d);
    }
    function scrollDown() { log.scrollTop = log.scrollHeight; }
    function senderLabel(m) {
      if (m.sender === 'agent') return m.agent_name ? String(m.agent_name) : t('sender.agent');
      return STRINGS['sender.' + m.sender] || String(m.sender || '');
    }
    function messageEl(m) {
      const kind = ['contact', 'assistant', 'agent', 'system'].includes(m.sender) ? m.sender : 'system';
      const d = new Date(m.created), time = h('time', { datetime: isNaN(d) ? null : d.toISOString() });
      if (!isNaN(d)) formatTime(time);
      return h('li', { class: 'msg msg-' + kind, 'data-id': m.id, 'data-seq': m.seq },
        h('div', { class: 'msg-meta' }, h('span', { class: 'sender' }, senderLabel(m)), ' ', time),
        h('p', { class: 'text' }, String(m.text ?? '')), attachmentsEl(m), locationEl(m.location));
    }
    // Files in a message (uploads, WhatsApp media): a download link (images with a thumbnail) once TalIA
    // holds the file.
    function attachmentsEl(m) {
      const items = Array.isArray(m.attachments) ? m.attachments : [];
      if (!items.length || !UUID.test(String(m.id))) return null;
      return h('ul', { class: 'attachments' }, ...items.map(a => {
        const name = String(a.name || a.content_type || '') || t('attachment');
        const href = '/console/conversations/' + encodeURIComponent(id) + '/messages/' + encodeURIComponent(m.id) + '/attachments/' + Number(a.index);
        const thumb = /^image\/(jpeg|png|webp|gif)$/.test(String(a.content_type)) ? [h('img', { class: 'thumb', src: href, alt: name, loading: 'lazy' }), h('br')] : [];
        return h('li', {}, a.stored ? h('a', { href }, ...thumb, '📎 ' + name) : '📎 ' + name, a.stored ? null : ' ', a.stored ? null : h('span', { class: 'muted' }, t('downloading')));
      }));
    }
    function locationEl(place) {
      if (!place || !Number.isFinite(place.latitude) || !Number.isFinite(place.longitude)) return null;
      const href = 'https://www.openstreetmap.org/?mlat=' + place.latitude + '&mlon=' + place.longitude;
      return h('p', { class: 'location' }, h('a', { href, rel: 'noopener noreferrer', target: '_blank' }, '📍 ' + (String(place.label || place.address || '') || t('location'))));
    }
    // The provider's reply window (WhatsApp: 24 h after the contact's last message), flipped when it closes.
    const replyWindow = $('reply-window');
    if (replyWindow && replyWindow.dataset.closesAt) {
      const closesAt = Date.parse(replyWindow.dataset.closesAt);
      const check = () => {
        if (!(Date.now() >= closesAt)) return;
        $('reply-window-open').hidden = true;
        $('reply-window-closed').hidden = false;
        clearInterval(windowTimer);
      };
      const windowTimer = setInterval(check, 30000);
      check();
    }
    // Render a stored message once (ids dedupe the socket, the catch-up and our own POST), in seq order.
    function add(m) {
      if (!m || typeof m !== 'object' || !m.id || seen.has(String(m.id))) return;
      if (m.conversation_id && m.conversation_id !== id) return;
      seen.add(String(m.id));
      const seq = Number(m.seq) || 0;
      const next = [...log.querySelectorAll('li[data-seq]')].find(li => Number(li.dataset.seq) > seq);
      log.insertBefore(messageEl(m), next || null);
      if (deliveries.has(String(m.id))) showDelivery(deliveries.get(String(m.id)));
      lastSeq = Math.max(lastSeq, seq);
      if (seq === lastSeq) {
        lastSender = m.sender;
        lastAt = Date.now();
      }
      const placeholder = $('messages-empty');
      if (placeholder) placeholder.remove();
      if (m.sender === 'contact') visitorTyping(false);
      scrollDown();
    }
    // Delivery of outbound messages through a provider (message.status): the status and, when it
    // failed, why, on the message itself. A status may come before its message is shown: kept until then.
    const deliveries = new Map();
    function showDelivery(v) {
      const li = [...log.querySelectorAll('li[data-id]')].find(x => x.dataset.id === String(v.message_id));
      if (!li) return;
      li.dataset.delivery = String(v.status || '');
      const meta = li.querySelector('.msg-meta');
      let label = li.querySelector('.delivery');
      if (!label) label = meta.appendChild(h('span', { class: 'delivery' }));
      // The page's own language: the push was built by a worker that knows nothing of the viewer's.
      label.textContent = STRINGS['delivery.' + v.status] || String(v.status || '');
      let error = li.querySelector('.delivery-error');
      if (v.error) {
        if (!error) error = li.appendChild(h('p', { class: 'delivery-error', role: 'status' }));
        error.textContent = String(v.error);
      } else if (error) {
        error.remove();
      }
    }
    function deliveryChanged(v) {
      if (!v.message_id) return;
      deliveries.set(String(v.message_id), v);
      showDelivery(v);
    }
    // Pushes can be lost: on a gap in seq, or silence while the assistant owes the visitor a reply, the
    // socket is asked for everything after the last seq (`resume`); without a socket, the JSON API is.
    function resume() {
      if (!wsSend({ type: 'resume', conversation_id: id, after: lastSeq })) catchUp();
    }
    setInterval(() => {
      const quiet = Date.now() - lastAt;
      if (root.dataset.watching && status === 'bot' && lastSender === 'contact' && quiet > 10000 && quiet < 180000) resume();
    }, 10000);
    // Everything after the last seq we have; one request at a time.
    function catchUp() {
      if (catchingUp) return catchingUp;
      catchingUp = (async () => {
        const r = await api('GET', apiUrl(id, 'messages') + '?after=' + lastSeq);
        if (r.ok && Array.isArray(r.data.messages)) r.data.messages.forEach(add);
      })().finally(() => { catchingUp = null; });
      return catchingUp;
    }

    function visitorTyping(on) {
      clearTimeout(typingTimer);
      typingEl.hidden = !on;
      // The widget repeats "active" every few seconds while the visitor types; silence means stopped.
      if (on) typingTimer = setTimeout(visitorTyping, 8000, false);
    }

    function note(text, reload) {
      noticeText.textContent = text;
      noticeReload.hidden = !reload;
      notice.hidden = false;
    }
    noticeReload.addEventListener('click', () => location.reload());

    function showEndRequest(on) {
      if (!endRequest) return;
      show(endError, '');
      endAccept.disabled = endDecline.disabled = false;
      endRequest.hidden = !on;
    }
    async function answerEndRequest(accept, button) {
      endAccept.disabled = endDecline.disabled = true;
      show(endError, '');
      const r = await api('POST', apiUrl(id, 'end-request'), { accept });
      if (r.ok && accept) {
        store('sessionStorage', DRAFT_KEY, null);
        location.reload();
        return;
      }
      if (r.ok) {
        endRequest.hidden = true;
        if (ta && !ta.disabled) ta.focus();
        return;
      }
      endAccept.disabled = endDecline.disabled = false;
      show(endError, r.error);
      button.focus();
    }
    function disableComposer() {
      if (form) for (const el of form.elements) el.disabled = true;
      if (actions) actions.hidden = true;
      showEndRequest(false);
      stopTyping();
    }
    // A change of status told by the socket: say what happened and take away what no longer applies.
    let claiming = false;
    function applyStatus(next, agentName) {
      if (!next || next === status) return;
      const was = status;
      status = next;
      root.dataset.status = next;
      const pill = $('conversation-status');
      if (pill && STRINGS['status.' + next]) {
        pill.textContent = STRINGS['status.' + next];
        pill.className = 'status status-' + next;
      }
      if (claiming) return; // our own claim: the page reloads
      visitorTyping(false);
      if (claimButton) claimButton.disabled = next !== (claimButton.dataset.action === 'take-over' ? 'bot' : 'queued');
      if (next === 'closed') {
        note(t('closed'));
        disableComposer();
      } else if (next === 'bot') {
        note(t('handedBack'));
        disableComposer();
      } else if (next === 'agent' && was === 'queued') {
        note(agentName ? t('takenBy', { name: agentName }) : t('takenByAnother'));
      } else if (next === 'queued') {
        note(t('queuedAgain'), true);
        disableComposer();
      }
    }

    // Labels: ticking one saves the whole set; another agent's change arrives as labels.changed.
    const labelBox = $('labels'), labelError = $('labels-error');
    function showLabels(labels) {
      if (!labelBox || !Array.isArray(labels)) return;
      const on = new Set(labels.map(l => String(l.id)));
      for (const box of labelBox.querySelectorAll('input')) box.checked = on.has(box.value);
    }
    if (labelBox) {
      labelBox.addEventListener('change', async () => {
        const boxes = [...labelBox.querySelectorAll('input')];
        for (const b of boxes) b.disabled = true;
        const r = await api('PUT', apiUrl(id, 'labels'), { labels: boxes.filter(b => b.checked).map(b => Number(b.value)) });
        for (const b of boxes) b.disabled = false;
        show(labelError, r.ok ? '' : r.error);
        if (r.ok) showLabels(r.data.labels);
      });
    }

    onEvent = v => {
      if (v.type === 'error') {
        if (v.error && v.error.code === 'forbidden' && !root.dataset.watching) note(t('watchForbidden'));
        return;
      }
      if (v.conversation_id !== id) return;
      if (v.type === 'watching') {
        root.dataset.watching = 'true';
        if (typeof v.status === 'string') applyStatus(v.status, v.agent_name);
      } else if (v.type === 'message.new') {
        const m = v.message;
        if (m && Number(m.seq) > lastSeq + 1) resume(); // something was missed: ask for the gap and this one
        else add(m);
      } else if (v.type === 'message.status') {
        deliveryChanged(v);
      } else if (v.type === 'typing') {
        if (v.sender === 'contact') visitorTyping(!!v.active);
      } else if (v.type === 'end.requested') {
        if (root.dataset.mine === 'true' && status === 'agent') showEndRequest(true);
      } else if (v.type === 'conversation.closed') {
        applyStatus('closed');
      } else if (v.type === 'conversation.handed_back') {
        applyStatus(v.status || 'bot');
      } else if (v.type === 'queue.removed' || v.type === 'handoff.accepted' || v.type === 'queue.added') {
        if (typeof v.status === 'string') applyStatus(v.status, v.agent_name);
      } else if (v.type === 'note.added') {
        addNote(v.note);
      } else if (v.type === 'labels.changed') {
        showLabels(v.labels);
      } else if (v.type === 'brief.ready') {
        note(t('briefReady'), true);
      } else if (v.type === 'conversation.transferred') {
        if (v.to_agent_id != null && String(v.to_agent_id) === root.dataset.userId) { location.reload(); return; }
        if (root.dataset.mine === 'true') { note(t('transferredAway'), true); disableComposer(); if (transferForm) transferForm.hidden = true; }
        else if (v.status === 'queued' && status === 'queued') note(t('movedQueue', { team: String(v.team_name || '') }), true);
        applyStatus(v.status, v.agent_name);
      }
    };
    onOpen = reconnected => {
      delete root.dataset.watching;
      wsSend({ type: 'watch', conversation_id: id });
      if (reconnected) {
        catchUp();
        catchUpNotes();
      }
    };

    // Internal notes and whispers: for the team only, never sent to the contact.
    const notes = $('notes');
    const notesSeen = new Set([...notes.querySelectorAll('li[data-id]')].map(li => li.dataset.id));
    for (const el of notes.querySelectorAll('time[datetime]')) formatTime(el);
    function addNote(n) {
      if (!n || typeof n !== 'object' || !n.id || notesSeen.has(String(n.id))) return;
      notesSeen.add(String(n.id));
      const kind = n.kind === 'whisper' ? 'whisper' : 'note';
      const d = new Date(n.created), time = h('time', { datetime: isNaN(d) ? null : d.toISOString() });
      if (!isNaN(d)) formatTime(time);
      const author = kind === 'whisper' ? t('whisperFrom', { name: n.author_name || '?' }) : String(n.author_name || '');
      notes.append(h('li', { class: 'note note-' + kind, 'data-id': n.id },
        h('div', { class: 'note-meta' }, h('span', { class: 'author' }, author), ' ', time),
        h('p', { class: 'text' }, String(n.text ?? ''))));
      const placeholder = $('notes-empty');
      if (placeholder) placeholder.remove();
    }
    async function catchUpNotes() {
      const r = await api('GET', apiUrl(id, 'notes'));
      if (r.ok && Array.isArray(r.data.notes)) r.data.notes.forEach(addNote);
    }
    for (const noteForm of document.querySelectorAll('form.note-form')) {
      const area = noteForm.querySelector('textarea'), button = noteForm.querySelector('button'), error = noteForm.querySelector('.error');
      noteForm.addEventListener('submit', async e => {
        e.preventDefault();
        const text = area.value.trim();
        if (!text || button.disabled) return;
        button.disabled = true;
        show(error, '');
        const r = await api('POST', apiUrl(id, noteForm.dataset.kind === 'whisper' ? 'whisper' : 'notes'), { text });
        button.disabled = false;
        if (r.ok) {
          area.value = '';
          addNote(r.data.note);
        } else {
          show(error, r.error);
        }
        area.focus();
      });
    }

    // Claim (or take over from the assistant): the winner reloads into the composer; the loser reads who
    // was quicker.
    if (claimButton) {
      claimButton.addEventListener('click', async () => {
        claimButton.disabled = true;
        claiming = true;
        show(claimError, '');
        const r = await api('POST', apiUrl(id, claimButton.dataset.action || 'claim'));
        if (r.ok) {
          location.reload();
          return;
        }
        claiming = false;
        show(claimError, r.error);
        // Refused for good when someone else has it or it is no longer waiting.
        claimButton.disabled = ['already_claimed', 'not_queued', 'not_with_assistant'].includes(r.code);
      });
    }

    // Typing: "active" at most every 3 s while keys come, "inactive" after 4 s of quiet or on send.
    let typingSentAt = 0, idleTimer;
    function stopTyping() {
      clearTimeout(idleTimer);
      if (typingSentAt) {
        typingSentAt = 0;
        wsSend({ type: 'typing', conversation_id: id, active: false });
      }
    }
    function onInput() {
      store('sessionStorage', DRAFT_KEY, ta.value ? ta.value : null);
      if (!ta.value.trim()) {
        stopTyping();
        return;
      }
      if (Date.now() - typingSentAt > 3000 && wsSend({ type: 'typing', conversation_id: id, active: true })) typingSentAt = Date.now();
      clearTimeout(idleTimer);
      idleTimer = setTimeout(stopTyping, 4000);
    }

    // Quick replies: "/shortcut" right before the caret, then Tab or Space. The page's language wins.
    const replies = new Map();
    for (const b of document.querySelectorAll('#quick-replies [data-shortcut]')) {
      const key = b.dataset.shortcut.toLowerCase(), text = (b.querySelector('.quick-reply-text') || b).textContent;
      if (!replies.has(key) || LANG.startsWith((b.dataset.locale || '').toLowerCase())) replies.set(key, text);
    }
    function insert(text, start, end) {
      ta.focus();
      ta.setRangeText(text, start, end, 'end');
      onInput();
    }
    function expand() {
      const pos = ta.selectionStart;
      if (pos !== ta.selectionEnd) return false;
      const m = /(?:^|\s)\/([\w-]+)$/.exec(ta.value.slice(0, pos));
      const text = m && replies.get(m[1].toLowerCase());
      if (!text) return false;
      insert(text, pos - m[1].length - 1, pos);
      return true;
    }
    for (const b of document.querySelectorAll('#quick-replies [data-shortcut]')) {
      b.addEventListener('click', () => {
        if (!ta || ta.disabled) return;
        insert((b.querySelector('.quick-reply-text') || b).textContent, ta.selectionStart, ta.selectionEnd);
      });
    }

    async function submit() {
      const text = ta.value.trim();
      if (!text || busy || ta.disabled) return;
      busy = true;
      sendButton.disabled = true;
      show(composerError, '');
      stopTyping();
      ta.value = '';
      const r = await api('POST', apiUrl(id, 'messages'), { text });
      busy = false;
      sendButton.disabled = ta.disabled;
      if (r.ok) {
        store('sessionStorage', DRAFT_KEY, ta.value ? ta.value : null);
        add(r.data.message);
      } else {
        // Give the text back, ahead of anything typed meanwhile.
        ta.value = ta.value ? text + '\n' + ta.value : text;
        show(composerError, r.error);
      }
      ta.focus();
    }

    // A file beside the reply box: sent as soon as it is chosen (multipart, the same session and CSRF).
    const fileInput = $('composer-file'), fileStatus = $('composer-file-status');
    async function sendFile() {
      const file = fileInput.files[0];
      if (!file) return;
      const body = new FormData();
      body.append('file', file);
      fileInput.disabled = true;
      fileStatus.textContent = t('uploading');
      show(composerError, '');
      let r = null, data = {};
      try {
        r = await fetch(apiUrl(id, 'attachments'), { method: 'POST', headers: { Accept: 'application/json', 'X-CSRFToken': csrfToken() }, credentials: 'same-origin', body });
        data = await r.json();
      } catch (e) { /* offline, or not JSON */ }
      fileInput.disabled = false;
      fileStatus.textContent = '';
      if (r && r.ok && data && data.message) { fileInput.value = ''; add(data.message); }
      else {
        const err = (data && data.error) || {};
        show(composerError, String((err.localized && err.localized.message) || err.message || t('failed')));
      }
    }
    if (fileInput) fileInput.addEventListener('change', sendFile);

    if (form && ta) {
      if (!ta.value) ta.value = store('sessionStorage', DRAFT_KEY) || '';
      form.addEventListener('submit', e => { e.preventDefault(); submit(); });
      ta.addEventListener('input', onInput);
      ta.addEventListener('blur', stopTyping);
      ta.addEventListener('keydown', e => {
        if (e.isComposing || e.keyCode === 229) return;
        if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
          e.preventDefault();
          submit();
        } else if ((e.key === 'Tab' && !e.shiftKey) || e.key === ' ') {
          // Without a matching shortcut Tab keeps moving the focus, as everywhere else.
          if (expand()) e.preventDefault();
        }
      });
      if (root.dataset.mine === 'true') ta.focus();
    }

    // Close (after an inline confirmation) reloads into the closed page; hand back goes to the queue the
    // answer names (the conversation is the assistant's again, no longer this agent's to open).
    const closeButton = $('close-button'), closeConfirm = $('close-confirm'), closeYes = $('close-yes'), closeNo = $('close-no');
    const handBackButton = $('hand-back-button');
    function confirmClose(open) {
      closeConfirm.hidden = !open;
      closeButton.setAttribute('aria-expanded', String(open));
      (open ? closeYes : closeButton).focus();
    }
    async function act(action, button) {
      for (const b of actions.querySelectorAll('button')) b.disabled = true;
      show(actionError, '');
      const r = await api('POST', apiUrl(id, action));
      if (r.ok) {
        store('sessionStorage', DRAFT_KEY, null);
        if (r.data && r.data.next) location.assign(r.data.next);
        else location.reload();
        return;
      }
      for (const b of actions.querySelectorAll('button')) b.disabled = false;
      show(actionError, r.error);
      button.focus();
    }
    if (closeButton) {
      closeButton.addEventListener('click', () => confirmClose(closeConfirm.hidden));
      closeNo.addEventListener('click', () => confirmClose(false));
      closeConfirm.addEventListener('keydown', e => { if (e.key === 'Escape') confirmClose(false); });
      closeYes.addEventListener('click', () => {
        closeConfirm.hidden = true;
        closeButton.setAttribute('aria-expanded', 'false');
        act('close', closeButton);
      });
    }
    if (handBackButton) handBackButton.addEventListener('click', () => act('hand-back', handBackButton));

    // Transfer to an agent or a team's queue, with a note (an internal note the receiver reads first).
    if (transferForm) transferForm.addEventListener('submit', async e => {
      e.preventDefault();
      const [kind, target] = $('transfer-to').value.split(':'), text = $('transfer-note').value.trim();
      if (!target || !text) { show($('transfer-error'), t('chooseTransfer')); return; }
      $('transfer-button').disabled = true;
      const r = await api('POST', apiUrl(id, 'transfer'), { [kind === 'team' ? 'team' : 'agent']: Number(target), note: text });
      $('transfer-button').disabled = false;
      if (r.ok) { store('sessionStorage', DRAFT_KEY, null); location.assign(r.data.next); return; }
      show($('transfer-error'), r.error);
    });

    // The visitor asked to end the chat: the agent ends it (reload into the closed page) or keeps chatting.
    if (endRequest) {
      endAccept.addEventListener('click', () => answerEndRequest(true, endAccept));
      endDecline.addEventListener('click', () => answerEndRequest(false, endDecline));
      if (root.dataset.endRequested === 'true' && status === 'agent') showEndRequest(true);
    }
  }

  // --- The monitor's figures: agents' loads and queues' waits, as the server counts them -------------------
  // Rendered with the page (data-waiting, data-oldest, data-capacity) and replaced by each `monitor.figures`
  // push, which lists only agents with a load and queues with someone waiting ('' is the unrouted queue).
  function monitorFigures(v) {
    const loads = new Map((Array.isArray(v.agents) ? v.agents : []).map(a => [String(a.id), Number(a.load) || 0]));
    for (const tr of document.querySelectorAll('#agent-states tr[data-agent-id]')) {
      const load = loads.get(tr.dataset.agentId) || 0;
      tr.querySelector('.load').textContent = String(load) + (tr.dataset.capacity ? ' / ' + tr.dataset.capacity : '');
    }
    const queues = new Map((Array.isArray(v.queues) ? v.queues : []).map(q => [q.team_id == null ? '' : String(q.team_id), q]));
    for (const tr of document.querySelectorAll('#team-queues tr[data-team-queue]')) {
      const q = queues.get(tr.dataset.teamQueue);
      tr.dataset.waiting = String(q ? Number(q.waiting) || 0 : 0);
      tr.dataset.oldest = q && typeof q.oldest === 'string' ? q.oldest : '';
    }
    queueWaits();
  }
  function queueWaits() {
    for (const tr of document.querySelectorAll('#team-queues tr[data-team-queue]')) {
      const oldest = Date.parse(tr.dataset.oldest || '');
      tr.querySelector('.waiting').textContent = String(Number(tr.dataset.waiting) || 0);
      tr.querySelector('.longest').textContent = isNaN(oldest) ? '—' : minutes(now() - oldest);
    }
  }

  // --- The supervisors' monitor: every open conversation, live; read-only -------------------------------
  function monitorPage() {
    const list = $('monitor-list'), empty = $('monitor-list-empty'), rowTemplate = $('monitor-row-template');
    const agentsList = $('agents-list'), agentsEmpty = $('agents-list-empty'), agentsUnknown = $('agents-unknown');
    const summaries = $('summaries-list');
    const RANK = { queued: 0, agent: 1, bot: 2 }, PREVIEW = 3;
    const names = new Map(); // contact names of rows that closed, for their summary line

    const rows = () => [...list.children].filter(li => li.dataset.conversationId);
    const rowFor = id => rows().find(li => li.dataset.conversationId === id);

    function refresh() {
      const all = rows(), count = status => all.filter(li => li.dataset.status === status).length;
      const queued = $('figure-queued');
      queued.textContent = String(count('queued'));
      queued.classList.toggle('hot', count('queued') > 0);
      $('figure-agent').textContent = String(count('agent'));
      $('figure-bot').textContent = String(count('bot'));
      list.hidden = !all.length;
      empty.hidden = !!all.length;
      for (const li of all) {
        const at = Date.parse(li.dataset.queuedAt || '');
        li.querySelector('.wait').textContent = li.dataset.status === 'queued' && !isNaN(at)
          ? t('waiting', { since: minutes(now() - at) })
          : li.dataset.ending ? t('wantsToEnd') : '';
      }
      queueWaits();
    }
    // The queue first (oldest first), then conversations with an agent, then the assistant's.
    function place(li) {
      const rank = RANK[li.dataset.status] ?? 2;
      const after = rows().find(other => other !== li && (RANK[other.dataset.status] ?? 2) > rank);
      list.insertBefore(li, after || null);
    }
    function row(id, channel) {
      let li = rowFor(id);
      if (li || !UUID.test(id || '')) return li;
      li = rowTemplate.content.firstElementChild.cloneNode(true);
      li.dataset.conversationId = id;
      li.dataset.channel = String(channel || '');
      li.querySelector('a').href = conversationUrl(id);
      li.querySelector('.tag').textContent = channelLabel(channel);
      // The last messages, as the rendered rows show them (text as text).
      const lines = li.querySelector('.preview');
      for (const m of Array.isArray(preview) ? preview : []) {
        const sender = String(m.sender || '');
        lines.append(h('li', { class: sender }, h('span', { class: 'sender' }, (STRINGS['sender.' + sender] || sender) + ':'), ' ' + String(m.text || '')));
      }
      list.append(li);
      return li;
    }
    function setStatus(li, status, agentName) {
      if (!li || !(status in RANK)) return;
      li.dataset.status = status;
      const pill = li.querySelector('.status');
      pill.textContent = STRINGS['status.' + status] || status;
      pill.className = 'status status-' + status;
      if (status === 'agent') li.querySelector('.agent').textContent = String(agentName || '');
      else li.querySelector('.agent').textContent = '';
      if (status === 'queued') li.dataset.queuedAt = li.dataset.queuedAt || new Date(now()).toISOString();
      else delete li.dataset.queuedAt;
      if (status !== 'agent') delete li.dataset.ending;
      li.querySelector('.reassign').hidden = !(status === 'queued' || status === 'agent');
      place(li);
    }
    function preview(li, m) {
      const ol = li.querySelector('.preview');
      if (!m || typeof m !== 'object' || !m.id || [...ol.children].some(x => x.dataset.id === String(m.id))) return;
      const sender = m.sender === 'agent' && m.agent_name ? String(m.agent_name) : STRINGS['sender.' + m.sender] || String(m.sender || '');
      const text = (Array.isArray(m.attachments) && m.attachments.length ? '📎 ' : '') + String(m.text ?? '');
      ol.append(h('li', { class: String(m.sender || ''), 'data-id': m.id },
        h('span', { class: 'sender' }, sender + ':'), ' ', text.length > 160 ? text.slice(0, 159) + '…' : text));
      while (ol.children.length > PREVIEW) ol.firstElementChild.remove();
    }
    function setAgents(agents) {
      if (agentsUnknown) agentsUnknown.hidden = true;
      agentsList.replaceChildren(...agents.map(a => h('li', { 'data-agent-id': a.id }, h('span', { class: 'name' }, String(a.name || '?')))));
      agentsList.hidden = !agents.length;
      agentsEmpty.hidden = !!agents.length;
      $('figure-online').textContent = String(agents.length);
      // The agents' table: who is connected is in the state they chose; everyone else is offline.
      const states = new Map(agents.map(a => [String(a.id), ['away', 'offline'].includes(a.state) ? a.state : 'online']));
      for (const tr of document.querySelectorAll('#agent-states tr[data-agent-id]')) {
        const state = states.get(tr.dataset.agentId) || 'offline', cell = tr.querySelector('.state');
        cell.dataset.state = state;
        cell.className = 'state state-' + state;
        cell.textContent = STRINGS['state.' + state] || state;
      }
    }
    function setTeam(li, teamId, teamName) {
      if (!li) return;
      li.dataset.teamId = teamId == null ? '' : String(teamId);
      li.querySelector('.team').textContent = teamId == null ? '' : String(teamName || '');
    }

    // Reassign: a row's button opens the one form; the server's answer (or the pushes) updates the page.
    const form = $('reassign-form');
    let reassigning = null;
    list.addEventListener('click', e => {
      const button = e.target.closest('button.reassign');
      if (!button) return;
      const li = button.closest('li[data-conversation-id]');
      reassigning = li.dataset.conversationId;
      $('reassign-who').textContent = li.querySelector('.contact').textContent;
      $('reassign-to').value = '';
      $('reassign-note').value = '';
      show($('reassign-error'), '');
      form.hidden = false;
      $('reassign-to').focus();
    });
    $('reassign-cancel').addEventListener('click', () => { form.hidden = true; reassigning = null; });
    form.addEventListener('submit', async e => {
      e.preventDefault();
      const [kind, target] = $('reassign-to').value.split(':');
      if (!reassigning || !target) { show($('reassign-error'), t('chooseReassign')); return; }
      const body = { [kind === 'team' ? 'team' : 'agent']: Number(target) };
      const text = $('reassign-note').value.trim();
      if (text) body.note = text;
      $('reassign-button').disabled = true;
      const r = await api('POST', apiUrl(reassigning, 'reassign'), body);
      $('reassign-button').disabled = false;
      if (!r.ok) { show($('reassign-error'), r.error); return; }
      form.hidden = true;
      reassigning = null; // the pushes move the row and bring the new loads and waits (monitor.figures)
    });
    function summaryReady(id) {
      const placeholder = $('summaries-empty');
      if (placeholder) placeholder.remove();
      summaries.prepend(h('li', {}, h('a', { href: conversationUrl(id) }, names.get(id) || id.slice(0, 8)), ' ',
        h('span', { class: 'muted' }, t('summaryReady'))));
    }

    onEvent = v => {
      const id = v.conversation_id;
      const li = rowFor(id);
      if (v.type === 'monitor.figures') {
        monitorFigures(v);
      } else if (v.type === 'agents.online') {
        setAgents(Array.isArray(v.agents) ? v.agents : []);
      } else if (v.type === 'conversation.opened') {
        setStatus(row(id, v.channel), v.status || 'bot');
      } else if (v.type === 'queue.added') {
        const added = row(id, v.channel);
        if (added && 'team_id' in v) setTeam(added, v.team_id, v.team_name);
        setStatus(added, 'queued');
      } else if (v.type === 'conversation.transferred') {
        if (li && v.status === 'queued') {
          if (li.dataset.status !== 'queued') delete li.dataset.queuedAt; // moved between queues: the wait goes on
          setTeam(li, v.to_team_id, v.team_name);
        }
        setStatus(li, v.status, v.agent_name);
      } else if (v.type === 'handoff.accepted' || v.type === 'queue.removed' || v.type === 'conversation.handed_back') {
        setStatus(li, v.status, v.agent_name);
      } else if (v.type === 'message.new') {
        if (li) preview(li, v.message);
      } else if (v.type === 'end.requested') {
        if (li) li.dataset.ending = 'true';
      } else if (v.type === 'conversation.closed') {
        if (li) {
          names.set(id, li.querySelector('.contact').textContent);
          li.remove();
        }
      } else if (v.type === 'summary.ready') {
        if (UUID.test(id || '')) summaryReady(id);
      }
      refresh();
    };
    onOpen = reconnected => reloadOnReconnect(reconnected);
    refresh();
    setInterval(refresh, 30000);
  }
})();

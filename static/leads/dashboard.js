/* TalIA dashboard: move lead cards between pipeline stages, by drag and drop or with the keyboard.
   The page is rendered by Django; this script only adds moving cards through
   POST /console/api/leads/<id>/move (the URL is on each card as data-move-url). The card moves at once
   and goes back where it was if the server refuses. No dependencies, no build step. Text is only ever
   set as text (textContent), never parsed as markup. */
(() => {
  'use strict';
  const board = document.getElementById('kanban');
  if (!board) return;

  // Shared with the console pages: static/console/kit.js.
  const { t, show, api } = window.TalIAKit;

  const errorBox = document.getElementById('kanban-error');
  const statusBox = document.getElementById('kanban-status');
  const announce = text => { if (statusBox) statusBox.textContent = text; };

  // Resolves to {ok, status, data, error}; `error` is for people, in the page's language.
  async function post(url, body) {
    const r = await api('POST', url, body);
    if (r.ok || r.status === 0) return r;
    const reason = { 400: 'invalid', 401: 'forbidden', 403: 'forbidden', 404: 'notFound' }[r.status] || 'failed';
    return { ok: false, status: r.status, data: r.data, error: t(reason) };
  }

  const columns = () => Array.from(board.querySelectorAll('.column'));
  const columnOf = stage => columns().find(c => c.dataset.stage === stage) || null;
  const cardOf = el => (el instanceof Element ? el.closest('.card') : null);

  function adjustCount(column, delta) {
    const badge = column && column.querySelector('[data-count]');
    if (!badge) return;
    const n = Math.max(0, (parseInt(badge.dataset.count, 10) || 0) + delta);
    badge.dataset.count = String(n);
    badge.textContent = String(n);
  }
  function refreshEmpty(column) {
    if (!column) return;
    const empty = column.querySelector('.empty');
    if (empty) empty.hidden = Boolean(column.querySelector('.card'));
  }
  function setStage(card, stage) {
    card.dataset.stage = stage;
    const select = card.querySelector('.move-form select');
    if (select) select.value = stage;
  }

  // Move `card` to `stage`: on the board first, then on the server; back again if the server refuses.
  async function move(card, stage) {
    const from = card.dataset.stage;
    const source = columnOf(from);
    const target = columnOf(stage);
    if (!target || stage === from || card.getAttribute('aria-busy') === 'true') {
      setStage(card, from);
      return;
    }
    const name = card.dataset.name || '';
    const parent = card.parentNode;
    const next = card.nextSibling;
    show(errorBox, '');
    target.querySelector('.cards').prepend(card);
    setStage(card, stage);
    adjustCount(source, -1);
    adjustCount(target, 1);
    refreshEmpty(source);
    refreshEmpty(target);
    card.setAttribute('aria-busy', 'true');

    const r = await post(card.dataset.moveUrl, { stage });
    card.removeAttribute('aria-busy');
    if (r.ok) {
      announce(t('moved', { name, stage: target.dataset.label || stage }));
      return;
    }
    parent.insertBefore(card, next && next.parentNode === parent ? next : null);
    setStage(card, from);
    adjustCount(target, -1);
    adjustCount(source, 1);
    refreshEmpty(source);
    refreshEmpty(target);
    show(errorBox, t('moveFailed', { name, error: r.error }));
  }

  // Keyboard (and pointer) alternative: the stage select and Move button on every card.
  for (const form of board.querySelectorAll('.move-form')) form.hidden = false;
  board.addEventListener('submit', async e => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains('move-form')) return;
    e.preventDefault();
    const card = cardOf(form);
    const select = form.querySelector('select');
    if (!card || !select) return;
    await move(card, select.value);
    // Moving the card in the document takes the focus away: give it back to the card's own select.
    select.focus();
  });

  // Drag and drop.
  let dragged = null;
  board.addEventListener('dragstart', e => {
    const card = cardOf(e.target);
    if (!card || card.getAttribute('aria-busy') === 'true') return;
    dragged = card;
    card.classList.add('dragging');
    e.dataTransfer.effectAllowed = 'move';
    e.dataTransfer.setData('text/plain', card.dataset.cardId || '');
  });
  board.addEventListener('dragend', () => {
    if (dragged) dragged.classList.remove('dragging');
    dragged = null;
    for (const column of columns()) column.classList.remove('drop-target');
  });
  board.addEventListener('dragover', e => {
    const column = e.target instanceof Element ? e.target.closest('.column') : null;
    if (!dragged || !column) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'move';
    column.classList.add('drop-target');
  });
  board.addEventListener('dragleave', e => {
    const column = e.target instanceof Element ? e.target.closest('.column') : null;
    if (column && !column.contains(e.relatedTarget)) column.classList.remove('drop-target');
  });
  board.addEventListener('drop', e => {
    const column = e.target instanceof Element ? e.target.closest('.column') : null;
    if (!dragged || !column) return;
    e.preventDefault();
    column.classList.remove('drop-target');
    const card = dragged;
    dragged = null;
    card.classList.remove('dragging');
    move(card, column.dataset.stage);
  });
})();

// Pieces shared by the pages: error boxes, tables, paging, announcements, dialogs, IPv4 ranges.

import { h, fill, id } from './dom.js';
import { t } from './i18n.js';
import { ApiError } from './api.js';

// announce tells screen readers (and the tests) what just happened.
export function announce(text) {
  const el = document.getElementById('announce');
  el.textContent = '';
  el.textContent = text;
}

// errorBox shows a refusal inline: the message, and for a server's the reason and request ID.
export function errorBox(err) {
  if (err instanceof ApiError) {
    return h('div', { class: 'error', role: 'alert' },
      err.status === 401
        ? h('p', { class: 'error-message' }, t('error.unauthorized'))
        : h('p', { class: 'error-message', lang: 'en' }, err.message), // the server's words, in English
      h('p', { class: 'error-meta' },
        err.reason ? h('span', { class: 'error-reason', 'data-reason': err.reason }, t('error.reason', { reason: err.reason })) : null,
        err.requestId ? h('span', { class: 'error-request' }, t('error.requestId', { id: err.requestId })) : null));
  }
  if (err instanceof TypeError) { // fetch failed: the gateway cannot be reached
    return h('div', { class: 'error', role: 'alert' }, h('p', { class: 'error-message' }, t('error.network')));
  }
  return h('div', { class: 'error', role: 'alert' }, h('p', { class: 'error-message' }, err.message));
}

// showError puts an error (or nothing) into a slot.
export function showError(slot, err) {
  fill(slot, err ? errorBox(err) : null);
}

// table builds a table with a caption (for screen readers) and a scrollable, focusable wrapper.
export function table(caption, headers, rows, emptyText) {
  const body = rows.length
    ? rows
    : [h('tr', {}, h('td', { colspan: headers.length, class: 'empty' }, emptyText))];
  return h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': caption },
    h('table', {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, body)));
}

// pager shows where a page is in the whole and moves between pages.
export function pager(offset, limit, total, go) {
  const from = total === 0 ? 0 : offset + 1;
  const to = Math.min(offset + limit, total);
  return h('nav', { class: 'pager', 'aria-label': t('pager.label') },
    h('button', { type: 'button', disabled: offset === 0, onclick: () => go(Math.max(0, offset - limit)) }, t('pager.prev')),
    h('span', { class: 'pager-pos' }, t('pager.position', { from, to, total })),
    h('button', { type: 'button', disabled: offset + limit >= total, onclick: () => go(offset + limit) }, t('pager.next')));
}

// field is a labelled control.
export function field(labelText, control, hint) {
  if (!control.id) control.id = id('f');
  const hintEl = hint ? h('p', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, labelText), control, hintEl);
}

// modal opens a modal dialog: showModal keeps focus inside it (the page behind is inert);
// Escape or Cancel closes it, and focus returns to what opened it.
export function modal(titleText, build) {
  const opener = document.activeElement;
  const titleId = id('dlg');
  const dlg = h('dialog', { 'aria-labelledby': titleId, class: 'dialog' });
  const close = () => dlg.close();
  dlg.addEventListener('close', () => {
    dlg.remove();
    if (opener && opener.isConnected) opener.focus();
  });
  fill(dlg, h('h2', { id: titleId }, titleText), build(close));
  // Tab and Shift+Tab cycle through the dialog's controls and never leave it.
  dlg.addEventListener('keydown', (e) => {
    if (e.key !== 'Tab') return;
    const stops = [...dlg.querySelectorAll('button, input, select, textarea, a[href], [tabindex]:not([tabindex="-1"])')]
      .filter((el) => !el.disabled && el.getClientRects().length > 0);
    if (stops.length === 0) return;
    const first = stops[0];
    const last = stops[stops.length - 1];
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  });
  document.body.append(dlg);
  dlg.showModal();
  return dlg;
}

// IPv4 helpers: parse to a number, print, and the usable range of a subnet (network and
// gateway, the first two addresses, and the broadcast, the last, are reserved).
export function parseIPv4(s) {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s.trim());
  if (!m) return null;
  const p = m.slice(1).map(Number);
  if (p.some((x) => x > 255) || m.slice(1).some((x) => x.length > 1 && x.startsWith('0'))) return null;
  return ((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3];
}

export function formatIPv4(n) {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function usableRange(cidr) {
  const [addr, bits] = cidr.split('/');
  const base = parseIPv4(addr);
  const size = 2 ** (32 - Number(bits));
  const network = base - (base % size);
  return { first: network + 2, last: network + size - 2 };
}

// The console: sign-in, the shell (header, sidebar), the router and the polling that keeps the
// page live.

import { h, fill } from './dom.js';
import { load, t, setLang, lang, languages } from './i18n.js';

const langNames = { en: 'lang.en', zh: 'lang.zh' };
import { call, key, setKey, whenUnauthorized } from './api.js';
import { errorBox, announce, field } from './ui.js';
import { listPage, pages } from './lists.js';
import { havipList, havipDetails } from './havip.js';

const app = document.getElementById('app');
let page = null; // the page shown: { refresh?() }
let timer = 0;

// Live state: while the tab is visible, the page asks the API again every 400 ms, counted from
// the start of the previous round (its refresh compares the answer with what it shows and
// redraws only what changed): a change shows within 400 ms and a round trip.
const pollEvery = 400;

function poll(delay) {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    const started = performance.now();
    if (document.visibilityState === 'visible' && page?.refresh) {
      try {
        await page.refresh();
      } catch {
        // the next round tries again; errors of the user's own actions are shown inline
      }
    }
    poll(Math.max(0, pollEvery - (performance.now() - started)));
  }, delay);
}

function langSelect() {
  const sel = h('select', {
    onchange: () => {
      setLang(sel.value);
      render();
      announce(t('lang.changed'));
    },
  }, languages.map((l) => h('option', { value: l, selected: l === lang() }, t(langNames[l]))));
  return field(t('lang.label'), sel);
}

function signIn(err) {
  page = null;
  const input = h('input', { type: 'password', name: 'api-key', autocomplete: 'off', required: true, spellcheck: false });
  const slot = h('div', {}, err ? errorBox(err) : null);
  const form = h('form', {
    class: 'signin',
    onsubmit: async (e) => {
      e.preventDefault();
      const k = input.value.trim();
      if (!k) {
        fill(slot, h('div', { class: 'error', role: 'alert' }, h('p', { class: 'error-message' }, t('signin.empty'))));
        input.focus();
        return;
      }
      try {
        await call('GET', '/vpcs?limit=1', undefined, k);
      } catch (e2) {
        fill(slot, errorBox(e2));
        input.select();
        return;
      }
      setKey(k);
      if (!location.hash || location.hash === '#/') location.hash = '#/havips';
      render();
    },
  },
  h('h1', {}, t('app.title')),
  h('p', {}, t('signin.intro')),
  field(t('signin.key'), input, t('signin.keyHint')),
  slot,
  h('button', { type: 'submit', class: 'primary' }, t('signin.submit')));
  fill(app, h('main', { class: 'signin-page', id: 'main' }, form, langSelect()));
  input.focus();
}

const nav = [
  ['vpcs', 'nav.vpcs'],
  ['subnets', 'nav.subnets'],
  ['instances', 'nav.instances'],
  ['enis', 'nav.enis'],
  ['havips', 'nav.havips'],
  ['eips', 'nav.eips'],
];

function shell(section) {
  const main = h('main', { id: 'main', tabindex: -1 });
  const links = h('ul', {}, nav.map(([route, label]) => h('li', {},
    h('a', { href: `#/${route}`, 'aria-current': route === section ? 'page' : undefined, 'data-route': route }, t(label)))));
  fill(app,
    h('header', { class: 'top' },
      h('a', { class: 'brand', href: '#/havips' }, t('app.title')),
      h('div', { class: 'top-tools' },
        langSelect(),
        h('button', {
          type: 'button',
          class: 'signout',
          onclick: () => {
            setKey('');
            location.hash = '';
            signIn();
            announce(t('signin.signedOut'));
          },
        }, t('signin.signout')))),
    h('div', { class: 'layout' },
      h('nav', { class: 'sidebar', 'aria-label': t('nav.label') },
        h('p', { class: 'nav-group' }, t('nav.group')), links),
      main));
  return main;
}

// route is the page of the location's hash: #/havips, #/havips/<id>, #/vpcs, ...
function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  return { section: parts[0] || 'havips', id: parts[1] ? decodeURIComponent(parts[1]) : '' };
}

let lastRoute = '';

function render() {
  if (!key()) {
    signIn();
    return;
  }
  const r = route();
  const main = shell(r.section);
  if (r.section === 'havips' && r.id) page = havipDetails(main, r.id);
  else if (r.section === 'havips') page = havipList(main);
  else if (pages[r.section]) page = listPage(main, pages[r.section]);
  else page = havipList(main);
  const now = `${r.section}/${r.id}`;
  if (now !== lastRoute && lastRoute !== '') main.focus(); // a new page: focus its content
  lastRoute = now;
}

whenUnauthorized(() => {
  setKey('');
  signIn(new Error(t('error.unauthorized')));
});

window.addEventListener('hashchange', render);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && page?.refresh) page.refresh().catch(() => {});
});

await load();
render();
poll(pollEvery);

// The console's two languages: every string shown comes from a dictionary (i18n/en.json,
// i18n/zh.json), which have the same keys.

export const languages = ['en', 'zh'];
const htmlLang = { en: 'en', zh: 'zh-CN' };
const dicts = {};
let current = 'en';

// load fetches both dictionaries and picks the language: the one chosen before, or the
// browser's.
export async function load() {
  await Promise.all(languages.map(async (l) => {
    const r = await fetch(`i18n/${l}.json`);
    dicts[l] = await r.json();
  }));
  const saved = localStorage.getItem('havip-console.lang');
  const preferred = (navigator.language || '').toLowerCase().startsWith('zh') ? 'zh' : 'en';
  setLang(languages.includes(saved) ? saved : preferred);
}

// setLang switches the language and remembers it.
export function setLang(l) {
  current = l;
  localStorage.setItem('havip-console.lang', l);
  document.documentElement.lang = htmlLang[l];
  document.title = t('app.title');
}

// lang is the language in use.
export function lang() {
  return current;
}

// t returns the string of key in the current language, with {name} replaced from vars. A key
// missing from the dictionary shows as itself (the dictionary test keeps that from happening).
export function t(key, vars) {
  const s = dicts[current]?.[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m));
}

// time formats a timestamp (RFC 3339) in the current language; empty for none.
export function time(ts) {
  if (!ts) return '';
  return new Intl.DateTimeFormat(htmlLang[current], { dateStyle: 'medium', timeStyle: 'medium' }).format(new Date(ts));
}

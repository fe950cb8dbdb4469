// Building the DOM without markup strings: every text goes in as a text node.

// h creates an element: attrs are properties or attributes (on* are listeners; class, for,
// aria-*, data-* and role are attributes), children are nodes, strings (text) or arrays; null
// and false children are skipped.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class' || k === 'for' || k === 'role' || k.startsWith('aria-') || k.startsWith('data-') || k === 'scope' || k === 'tabindex' || k === 'colspan' || k === 'lang') {
      el.setAttribute(k, v === true ? '' : String(v));
    } else {
      el[k] = v;
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// clear empties an element and fills it with children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
// id returns a fresh element ID with a prefix, for label/control pairs.
export function id(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

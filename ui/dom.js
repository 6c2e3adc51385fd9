/* global document */
/**
 * Building the page's DOM. Text goes in as text nodes, never as HTML: names and keys in the
 * mesh's data (a user's sub, a header value) cannot become markup.
 */

/** An element: h('td', { class: 'num', data: { health: 'ok' } }, 'text', child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'data') for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    else if (name === 'class') el.className = value;
    // Through the CSSOM, which the page's CSP allows (a style attribute it would not).
    else if (name === 'style') for (const [k, v] of Object.entries(value)) el.style.setProperty(k, v);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
  }
}

/** Replaces an element's contents. */
export function show(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el;
}

// DOM helpers. Every piece of text goes in through text nodes
// (textContent); nothing here ever assigns innerHTML, so user data cannot
// become markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function applyAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'hidden') el[k] = !!v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// h builds an HTML element: h('button', {class: 'x', onclick: fn}, 'Label').
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

// s builds an SVG element.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// toast shows a short message in the live region.
export function toast(message, kind = 'info', ms = 4000) {
  const box = document.getElementById('toasts');
  if (!box) return;
  const t = h('div', {class: ['toast', kind], role: kind === 'error' ? 'alert' : undefined}, message);
  box.append(t);
  setTimeout(() => t.remove(), ms);
}

// confirmDialog asks a question in a modal <dialog>; resolves to the values
// of its fields (or null when cancelled). fields: [{name, label, type, options, value, required}]
export function formDialog({title, message, fields = [], submit = 'OK', danger = false}) {
  return new Promise((resolve) => {
    const inputs = {};
    const form = h('form', {method: 'dialog', class: 'dialog-form'},
      h('h2', {}, title),
      message ? h('p', {}, message) : null,
      fields.map((f) => {
        const id = 'dlg-' + f.name;
        let input;
        if (f.type === 'select') {
          input = h('select', {id, name: f.name, required: f.required},
            f.options.map((o) => h('option', {value: o.value, selected: o.value === f.value}, o.label)));
        } else if (f.type === 'textarea') {
          input = h('textarea', {id, name: f.name, rows: 3, required: f.required, maxlength: f.maxlength}, f.value || '');
        } else {
          input = h('input', {id, name: f.name, type: f.type || 'text', value: f.value ?? '', required: f.required, min: f.min, max: f.max});
        }
        inputs[f.name] = input;
        return h('div', {class: 'field'}, h('label', {for: id}, f.label), input);
      }),
      h('div', {class: 'dialog-buttons'},
        h('button', {type: 'button', value: 'cancel', onclick: () => { dlg.close(); }}, 'Cancel'),
        h('button', {type: 'submit', class: danger ? 'danger' : 'primary', value: 'ok'}, submit)));
    const dlg = h('dialog', {class: 'dialog', 'aria-label': title}, form);
    let result = null;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      result = {};
      for (const [k, el] of Object.entries(inputs)) result[k] = el.value;
      dlg.close();
    });
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

export function confirmDialog(title, message, submit = 'OK', danger = false) {
  return formDialog({title, message, submit, danger}).then((r) => r !== null);
}

// Formatting.

export function fmtNumber(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return Number(n).toLocaleString(undefined, {maximumFractionDigits: digits, minimumFractionDigits: 0});
}

// fmtDuration renders milliseconds as "42 s", "3 min 5 s", "2 h 10 min".
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  const sec = Math.round(ms / 1000);
  if (sec < 60) return `${sec} s`;
  const min = Math.floor(sec / 60);
  if (min < 60) return sec % 60 ? `${min} min ${sec % 60} s` : `${min} min`;
  const hr = Math.floor(min / 60);
  if (hr < 48) return min % 60 ? `${hr} h ${min % 60} min` : `${hr} h`;
  return `${Math.round(hr / 24)} d`;
}

export function toDate(t) {
  if (t instanceof Date) return t;
  if (typeof t === 'number') return new Date(t);
  if (typeof t === 'string' && /^\d+$/.test(t)) return new Date(Number(t));
  return new Date(t);
}

export function fmtDateTime(t, tz) {
  const d = toDate(t);
  if (Number.isNaN(d.getTime())) return '–';
  return d.toLocaleString(undefined, {timeZone: tz, dateStyle: 'medium', timeStyle: 'short'});
}

export function fmtTime(t, tz) {
  const d = toDate(t);
  if (Number.isNaN(d.getTime())) return '–';
  try {
    return d.toLocaleTimeString(undefined, {timeZone: tz, hour: '2-digit', minute: '2-digit'});
  } catch {
    // A zone this browser does not know (the server refuses them; an old
    // row may still carry one): show the time in the viewer's zone.
    return d.toLocaleTimeString(undefined, {hour: '2-digit', minute: '2-digit'});
  }
}

export function fmtRelative(t) {
  const d = toDate(t);
  const diff = (Date.now() - d.getTime()) / 1000;
  if (Number.isNaN(diff)) return '–';
  if (diff < 45) return 'just now';
  if (diff < 3600) return `${Math.round(diff / 60)} min ago`;
  if (diff < 86400) return `${Math.round(diff / 3600)} h ago`;
  return d.toLocaleDateString();
}

// table renders rows with columns [{key, label, format?, numeric?, render?}];
// onRow makes rows clickable and keyboard-activatable.
export function table(columns, rows, {onRow, caption, empty = 'Nothing to show.'} = {}) {
  if (!rows || rows.length === 0) return h('p', {class: 'empty'}, empty);
  return h('div', {class: 'table-wrap'}, h('table', {class: 'data'},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', {scope: 'col', class: c.numeric ? 'num' : undefined}, c.label)))),
    h('tbody', {}, rows.map((r) => {
      const tr = h('tr', {}, columns.map((c) => h('td', {class: c.numeric ? 'num' : undefined},
        c.render ? c.render(r) : (c.format ? c.format(r[c.key], r) : (r[c.key] ?? '')))));
      if (onRow) {
        tr.tabIndex = 0;
        tr.classList.add('clickable');
        tr.addEventListener('click', () => onRow(r));
        tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') onRow(r); });
      }
      return tr;
    }))));
}

// downloadCSV saves rows as a CSV file built in the browser. Cells that a
// spreadsheet would run as a formula are prefixed with a quote.
export function downloadCSV(filename, columns, rows) {
  const cell = (v) => {
    let t = v === null || v === undefined ? '' : String(v);
    if (/^[=+\-@\t\r]/.test(t)) t = "'" + t;
    return /[",\n\r]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
  };
  const lines = [columns.map((c) => cell(c.label)).join(',')];
  for (const r of rows) lines.push(columns.map((c) => cell(c.csv ? c.csv(r) : r[c.key])).join(','));
  const blob = new Blob([lines.join('\r\n') + '\r\n'], {type: 'text/csv;charset=utf-8'});
  const a = h('a', {href: URL.createObjectURL(blob), download: filename});
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// Alerts for staff who are not looking: the user's notification
// preferences (GET/PUT /api/notifications/preferences), the console's
// unread count in the page title and the navigation, sounds, desktop
// notifications by kind, mentions in private notes, and the settings
// dialog. What was alerted is kept in window.parleyAlerts, the page's own
// record that tests (and curious admins) can read.
import {get, put} from './api.js';
import {h, toast} from './dom.js';
import {beep, notify} from './notify.js';

export const DEFAULTS = {
  sound: true, desktop_new_conversation: true, desktop_mention: true, desktop_transfer: true,
  digest_after_minutes: 0, queue_alert_minutes: 5,
};

let prefs = {...DEFAULTS};
let loaded = null;

// record is the page's state of alerts: unread total, sounds asked for and
// played, desktop notifications raised by kind.
const record = window.parleyAlerts = window.parleyAlerts || {unread: 0, soundsRequested: 0, soundsPlayed: 0, lastSound: '', desktop: []};

export function loadPreferences() {
  loaded = loaded || get('/api/notifications/preferences')
    .then((p) => { prefs = {...DEFAULTS, ...p}; return prefs; })
    .catch(() => prefs); // the defaults stand when the service is out of reach
  return loaded;
}

export const preferences = () => prefs;

// sound plays the chime of kind ('conversation', 'message') when the user wants sounds.
export function sound(kind) {
  if (!prefs.sound) return;
  record.soundsRequested++;
  record.lastSound = kind;
  if (beep(kind)) record.soundsPlayed++;
}

const DESKTOP_PREF = {conversation: 'desktop_new_conversation', mention: 'desktop_mention', transfer: 'desktop_transfer'};

// desktop raises a system notification of kind unless the user turned that kind off.
export function desktop(kind, title, body, onClick) {
  const pref = DESKTOP_PREF[kind];
  if (pref && !prefs[pref]) return;
  record.desktop.push(kind);
  notify(title, body, onClick);
}

// setUnread shows the console's unread total in the tab title and next to
// the Inbox link.
export function setUnread(n) {
  record.unread = n;
  document.body.dataset.unread = String(n);
  const base = document.title.replace(/^\(\d+\) /, '');
  document.title = n > 0 ? `(${n}) ${base}` : base;
  const link = document.querySelector('#nav a[href="/app/console"]');
  if (!link) return;
  let badge = link.querySelector('.nav-unread');
  if (n > 0) {
    if (!badge) {
      badge = h('span', {class: 'badge nav-unread', id: 'nav-unread'});
      link.append(' ', badge);
    }
    badge.textContent = String(n);
    badge.setAttribute('aria-label', `${n} unread`);
  } else if (badge) {
    badge.remove();
  }
}

function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

// mentions reports whether text names user as @Full Name or @First.
export function mentions(text, user) {
  const name = (user.name || '').trim();
  if (!name || !text) return false;
  const names = [name, name.split(/\s+/)[0]];
  return names.some((n) => new RegExp('@' + escapeRe(n) + '(?![\\p{L}\\p{N}])', 'iu').test(text));
}

// editPreferences opens the settings dialog; supervisors also set the
// queue alert.
export function editPreferences(user) {
  const isSupervisor = (user.roles || []).some((r) => r === 'supervisor' || r === 'admin');
  const check = (name, label) => h('div', {class: 'field check'},
    h('label', {class: 'inline-label'}, h('input', {type: 'checkbox', name, checked: !!prefs[name]}), label));
  const number = (name, label, help) => h('div', {class: 'field'},
    h('label', {for: 'pref-' + name}, label),
    h('input', {id: 'pref-' + name, name, type: 'number', min: 0, max: 1440, step: name === 'queue_alert_minutes' ? 'any' : 1, value: prefs[name]}),
    h('p', {class: 'muted'}, help));
  const form = h('form', {method: 'dialog', class: 'dialog-form', id: 'notification-settings'},
    h('h2', {}, 'Notification settings'),
    check('sound', 'Play a sound for new conversations and messages'),
    check('desktop_new_conversation', 'Desktop notification for new conversations'),
    check('desktop_mention', 'Desktop notification when a note mentions me (@name)'),
    check('desktop_transfer', 'Desktop notification when a conversation is transferred to me'),
    number('digest_after_minutes', 'Email me a digest after I am away for (minutes)', '0: no digest. At most one an hour while you are away.'),
    isSupervisor ? number('queue_alert_minutes', 'Alert me on the live overview when a visitor waits longer than (minutes)', '0: no alert.') : null,
    h('div', {class: 'dialog-buttons'},
      h('button', {type: 'button', onclick: () => dlg.close()}, 'Cancel'),
      h('button', {type: 'submit', class: 'primary'}, 'Save')));
  const dlg = h('dialog', {class: 'dialog', 'aria-label': 'Notification settings'}, form);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    const next = {...prefs};
    for (const el of form.elements) {
      if (!el.name) continue;
      next[el.name] = el.type === 'checkbox' ? el.checked : Number(el.value);
    }
    try {
      prefs = {...DEFAULTS, ...(await put('/api/notifications/preferences', next))};
      loaded = Promise.resolve(prefs);
      toast('Notification settings saved', 'ok');
      dlg.close();
    } catch (err) {
      toast(`Not saved: ${err.message}`, 'error');
    }
  });
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
}

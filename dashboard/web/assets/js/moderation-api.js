// The moderation API (package moderation, moderation/api.go) in one place.
// Every route needs the moderator role; unsafe methods carry the CSRF header.
import {get, post, put, query} from './api.js';

const enc = encodeURIComponent;

// DECISIONS maps a decision to its route under /api/moderation/items/:id/.
export const DECISIONS = {approve: 'approve', remove: 'remove', ban: 'ban', reviewed: 'review'};

// STATUSES are the queue's item statuses (claims live on open items).
export const STATUSES = [['open', 'To review'], ['approved', 'Approved'], ['removed', 'Removed'], ['banned', 'Banned'], ['reviewed', 'Reviewed']];

export const moderationAPI = {
  // → {items: [Item], total, counts: {category: n}}
  items: (filters) => get('/api/moderation/items' + query(filters)),
  // → {item, context: [{seq, message_id, role, actor_id, text, at}], audit: [AuditEntry]}
  item: (id) => get(`/api/moderation/items/${enc(id)}`),
  claim: (id) => post(`/api/moderation/items/${enc(id)}/claim`),
  release: (id) => post(`/api/moderation/items/${enc(id)}/release`),
  // decision: approve | remove | ban | reviewed; a ban needs duration ("24h", "7d").
  decide: (id, decision, {reason = '', duration} = {}) => {
    const route = DECISIONS[decision];
    if (!route) return Promise.reject(new Error(`unknown decision ${decision}`));
    return post(`/api/moderation/items/${enc(id)}/${route}`, duration ? {reason, duration} : {reason});
  },
  // → {entries: [{id, at, actor_id, actor_email, action, site_id, item_id, visitor_id, reason, detail}]}
  audit: (filters) => get('/api/moderation/audit' + query(filters)),
  // → {bans: [{site_id, visitor_id, until, reason, banned_by, item_id, created_at}]}
  bans: (filters) => get('/api/moderation/bans' + query(filters)),
  liftBan: (siteId, visitorId, reason) => post(`/api/moderation/bans/${enc(siteId)}/${enc(visitorId)}/lift`, {reason}),
  // → {site_id, policy, stored, updated_at?, updated_by?}
  policy: (siteId) => get(`/api/moderation/policy/${enc(siteId)}`),
  savePolicy: (siteId, policy) => put(`/api/moderation/policy/${enc(siteId)}`, policy),
  // Judges text with the given (unsaved) policy, or the site's saved one. → {verdict, normalised}
  testPolicy: (siteId, text, policy) => post('/api/moderation/policy/test', {site_id: siteId, text, policy}),
  // Puts the term or domain an item's span matched on the site's allow or block list.
  // list: allow | block → {site_id, list, kind: term|domain, value, removed_from?, policy}
  teachList: (id, list, match, reason = '') => post(`/api/moderation/items/${enc(id)}/lists`, reason ? {list, match, reason} : {list, match}),
  // → {since, days, sites: [{site_id, decided, removed, precision, by_category: [{key, decided, removed, precision}], by_source: [...]}]}
  precision: (filters) => get('/api/moderation/precision' + query(filters)),
  // The labels export (JSON lines for moderation/cmd/train), downloaded by the browser.
  labelsURL: (filters) => '/api/moderation/labels' + query(filters),
};

// sourceName reads a span or verdict source for people: "rules",
// "model parley-lr@2", "classifier x".
export function sourceName(src) {
  const s = src || 'rules';
  const i = s.indexOf(':');
  return i < 0 ? s : `${s.slice(0, i)} ${s.slice(i + 1)}`;
}

// decidingSources lists the detectors that set an item's action: its
// verdict's sources marked decided, else (older items) its spans' sources.
export function decidingSources(it) {
  const out = new Set((it.sources || []).filter((s) => s.decided).map((s) => s.source || 'rules'));
  if (out.size === 0) for (const sp of it.spans || []) out.add(sp.source || 'rules');
  return [...out].sort();
}

// teachable lists an item's distinct matched terms and domains: what a
// moderator can put on the allow or block list ({match, kind, category}).
export function teachable(it) {
  const seen = new Map();
  for (const sp of it.spans || []) {
    if (!sp.match || seen.has(sp.match)) continue;
    seen.set(sp.match, {match: sp.match, kind: (sp.rule || '').startsWith('link:') ? 'domain' : 'term', category: sp.category});
  }
  return [...seen.values()];
}

// highlight splits text into text nodes and <mark> elements for spans given
// as byte offsets [start, end) into the UTF-8 encoding of text.
export function highlight(text, spans, h) {
  const bytes = new TextEncoder().encode(text || '');
  const dec = new TextDecoder();
  const sorted = [...(spans || [])].filter((s) => s.end > s.start).sort((a, b) => a.start - b.start);
  const out = [];
  let at = 0;
  for (const s of sorted) {
    const start = Math.max(at, Math.min(s.start, bytes.length));
    const end = Math.min(Math.max(s.end, start), bytes.length);
    if (start > at) out.push(dec.decode(bytes.slice(at, start)));
    if (end > start) out.push(h('mark', {class: 'offending', title: s.category || ''}, dec.decode(bytes.slice(start, end))));
    at = Math.max(at, end);
  }
  if (at < bytes.length) out.push(dec.decode(bytes.slice(at)));
  return out;
}

// siteChoices lists the sites a moderator can pick: the sites they work
// on (every site for admins) from the chat service, otherwise the sites
// seen in the review queue.
export async function siteChoices() {
  try {
    const {sites} = await get('/api/chat/my-sites');
    return (sites || []).map((s) => ({id: s.id, name: s.name}));
  } catch {
    const ids = new Set();
    for (const [status] of STATUSES) {
      try {
        const r = await moderationAPI.items({status, limit: 200});
        for (const it of r.items || []) ids.add(it.site_id);
      } catch { /* keep what we have */ }
    }
    return [...ids].map((id) => ({id, name: id}));
  }
}

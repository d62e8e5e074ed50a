// The moderation API (package moderation, docs/moderation.md) in one place.
import {get, post, put, query} from './api.js';

const enc = encodeURIComponent;

export const moderationAPI = {
  items: (filters) => get('/api/moderation/items' + query(filters)),
  item: (id) => get(`/api/moderation/items/${enc(id)}`),
  claim: (id) => post(`/api/moderation/items/${enc(id)}/claim`),
  decide: (id, body) => post(`/api/moderation/items/${enc(id)}/decision`, body),
  audit: (filters) => get('/api/moderation/audit' + query(filters)),
  policy: (siteId) => get('/api/moderation/policy' + query({site_id: siteId})),
  savePolicy: (siteId, policy) => put('/api/moderation/policy' + query({site_id: siteId}), policy),
  testPolicy: (siteId, text, policy) => post('/api/moderation/policy/test', {site_id: siteId, text, policy}),
};

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

// One conversation as its transcript, with its events on a timeline. The
// messages and the conversation come from the chat service; the timeline
// merges them with the analytics facts of the conversation (queue waits,
// assignments, first reply, resolution, CSAT, missed) when the page was
// opened from a report's drill-down.
import {h, replace, fmtDateTime, fmtTime, fmtDuration, toDate} from '../dom.js';
import {get} from '../api.js';
import {recalledFacts} from '../analytics.js';

const ms = (t) => toDate(t).getTime();

// factEvents turns analytics facts into timeline entries.
function factEvents(f, names) {
  if (!f) return [];
  const out = [];
  const add = (at, type, label, text) => { if (at > 0) out.push({at, type, label, text}); };
  add(f.started_at, 'conversation.started', 'Started', `via ${f.channel || '?'}${f.started_in_hours ? ' (inside business hours)' : ''}`);
  add(f.wait_from, 'wait', 'Visitor waiting', 'the first-response clock starts');
  (f.assign_agents || []).forEach((a, i) => {
    add(f.assign_from?.[i], 'conversation.assigned', 'Assigned', `to ${names[a] || a}`);
  });
  if (f.first_response_ms >= 0) add(f.first_reply_at, 'first_reply', 'First reply', `after ${fmtDuration(f.first_response_ms)}`);
  add(f.left_at, 'visitor.left', 'Visitor left', '');
  if (f.missed) add(f.miss_at, 'missed', 'Missed', 'no reply in time');
  add(f.resolved_at, 'conversation.resolved', 'Resolved', f.resolution_ms >= 0 ? `after ${fmtDuration(f.resolution_ms)}` : '');
  if (f.reopens) add(f.last_event_at, 'conversation.reopened', 'Reopened', `${f.reopens} time(s)`);
  add(f.csat_at, 'csat.submitted', 'CSAT', `${f.csat}/5`);
  return out;
}

function messageEvents(list) {
  return list.map((m) => ({
    at: ms(m.created_at), type: 'message.sent', label: m.kind === 'note' ? 'Note' : 'Message',
    text: `${m.author?.name || m.author?.role || ''}: ${m.status === 'hidden' ? '(removed by a moderator)' : m.status === 'blocked' ? '(blocked)' : m.text}`,
  }));
}

export async function mount(root, ctx) {
  const id = ctx.rest;
  if (!id) {
    replace(root, h('h1', {id: 'page-title'}, 'Transcript'), h('p', {class: 'muted'}, 'Open a conversation from a report or the inbox.'));
    return;
  }
  const headBox = h('div', {id: 'transcript-head'});
  const msgs = h('div', {class: 'messages card', id: 'transcript', style: {maxHeight: 'none'}});
  const tl = h('ol', {class: 'timeline', id: 'timeline'});
  replace(root, h('h1', {id: 'page-title'}, 'Transcript'), headBox,
    h('div', {class: 'grid-2'}, h('section', {}, h('h2', {}, 'Messages'), msgs), h('section', {}, h('h2', {}, 'Timeline'), tl)));

  const facts = recalledFacts(id);
  const [detail, messages, staff] = await Promise.allSettled([
    get(`/api/chat/conversations/${encodeURIComponent(id)}`),
    get(`/api/chat/conversations/${encodeURIComponent(id)}/messages?limit=500`),
    get('/api/auth/staff'),
  ]);
  const names = {};
  if (staff.status === 'fulfilled') for (const u of staff.value.staff || []) names[u.id] = u.name;
  if (detail.status === 'fulfilled') {
    const c = detail.value.conversation || {};
    const v = detail.value.visitor || {};
    ctx.setTitle(`Transcript · ${v.name || c.id}`);
    replace(headBox, h('p', {}, h('strong', {}, v.name || v.email || 'Visitor'), ` · ${c.status} · ${c.channel} · started ${fmtDateTime(c.created_at)}`,
      c.assignee ? ` · ${c.assignee.name}` : '', c.csat ? ` · CSAT ${c.csat.rating}/5` : ''));
  } else {
    replace(headBox, h('p', {class: 'muted'}, `Conversation ${id}`), h('p', {class: 'error'}, `Conversation details unavailable: ${detail.reason.message}`));
  }
  let list = [];
  if (messages.status === 'fulfilled') {
    list = messages.value.messages || [];
    replace(msgs, list.length === 0 ? h('p', {class: 'muted'}, 'No messages.') : list.map((m) => h('div', {
      class: ['msg', m.author?.role, m.kind === 'note' ? 'note' : '', m.status !== 'visible' ? 'hidden-msg' : ''], 'data-seq': m.seq},
    m.status === 'hidden' ? 'Message removed by a moderator.' : m.status === 'blocked' && !m.text ? 'Message blocked by moderation.' : m.text,
    (m.attachments || []).map((a) => h('div', {}, h('a', {href: a.url, download: a.name}, `📎 ${a.name}`))),
    h('span', {class: 'meta'}, `${m.kind === 'note' ? 'Note · ' : ''}${m.author?.name || m.author?.role} · ${fmtTime(m.created_at)}`))));
  } else {
    replace(msgs, h('p', {class: 'error'}, `Messages unavailable: ${messages.reason.message}`));
  }
  const events = [...factEvents(facts, names), ...messageEvents(list)].sort((a, b) => a.at - b.at);
  replace(tl, events.length === 0 ? h('li', {class: 'muted'}, 'No events.') : events.map((ev) => h('li', {'data-type': ev.type},
    h('span', {class: 'ev-type'}, ev.label), ' ',
    h('span', {class: 'muted'}, fmtDateTime(ev.at)),
    ev.text ? h('div', {class: 'ev-text'}, ev.text) : null)));
}

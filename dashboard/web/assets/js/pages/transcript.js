// One conversation as its transcript, with its events on a timeline.
import {h, replace, fmtDateTime, fmtTime} from '../dom.js';
import {get} from '../api.js';
import {analyticsAPI} from '../analytics.js';

const EVENT_LABEL = {
  'conversation.started': 'Started', 'conversation.queued': 'Queued', 'conversation.assigned': 'Assigned',
  'conversation.transferred': 'Transferred', 'conversation.resolved': 'Resolved', 'conversation.reopened': 'Reopened',
  'message.sent': 'Message', 'message.read': 'Read', 'visitor.left': 'Visitor left', 'csat.submitted': 'CSAT',
  'moderation.verdict': 'Moderation verdict', 'moderation.decision': 'Moderator decision',
};

function describe(ev) {
  const p = ev.payload || {};
  switch (ev.type) {
    case 'conversation.started': return `via ${p.channel || '?'}${p.page_url ? ` on ${p.page_url}` : ''}`;
    case 'conversation.queued': return `${p.reason || ''}${p.position ? `, position ${p.position}` : ''}`;
    case 'conversation.assigned': return `to ${p.agent_name || p.agent_id} (${p.reason || ''})`;
    case 'conversation.transferred': return `to ${p.to_agent_id || 'team ' + p.to_team_id}${p.note ? ` — ${p.note}` : ''}`;
    case 'message.sent': return `${ev.actor?.role || ''}${p.kind === 'note' ? ' note' : ''}: ${p.text || ''}`;
    case 'message.read': return `${ev.actor?.role || ''} read up to #${p.up_to_seq}`;
    case 'csat.submitted': return `${p.rating}/5${p.comment ? ` — ${p.comment}` : ''}`;
    case 'moderation.verdict': return `${p.action} (${(p.categories || []).join(', ')})`;
    case 'moderation.decision': return `${p.decision}${p.reason ? ` — ${p.reason}` : ''}`;
    default: return p.reason || '';
  }
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

  const [detail, messages, events] = await Promise.allSettled([
    get(`/api/chat/conversations/${encodeURIComponent(id)}`),
    get(`/api/chat/conversations/${encodeURIComponent(id)}/messages?limit=500`),
    analyticsAPI.events(id),
  ]);
  if (detail.status === 'fulfilled') {
    const c = detail.value.conversation || {};
    const v = detail.value.visitor || {};
    ctx.setTitle(`Transcript · ${v.name || c.id}`);
    replace(headBox, h('p', {}, h('strong', {}, v.name || v.email || 'Visitor'), ` · ${c.status} · ${c.channel} · started ${fmtDateTime(c.created_at)}`,
      c.assignee ? ` · ${c.assignee.name}` : '', c.csat ? ` · CSAT ${c.csat.rating}/5` : ''));
  } else {
    replace(headBox, h('p', {class: 'muted'}, `Conversation ${id}`));
  }
  if (messages.status === 'fulfilled') {
    const list = messages.value.messages || [];
    replace(msgs, list.length === 0 ? h('p', {class: 'muted'}, 'No messages.') : list.map((m) => h('div', {
      class: ['msg', m.author?.role, m.kind === 'note' ? 'note' : '', m.status !== 'visible' ? 'hidden-msg' : ''], 'data-seq': m.seq},
    m.status === 'hidden' ? 'Message removed by a moderator.' : m.text,
    (m.attachments || []).map((a) => h('div', {}, h('a', {href: a.url, download: a.name}, `📎 ${a.name}`))),
    h('span', {class: 'meta'}, `${m.kind === 'note' ? 'Note · ' : ''}${m.author?.name || m.author?.role} · ${fmtTime(m.created_at)}`))));
  } else {
    replace(msgs, h('p', {class: 'error'}, `Messages unavailable: ${messages.reason.message}`));
  }
  if (events.status === 'fulfilled') {
    const list = events.value.events || [];
    replace(tl, list.length === 0 ? h('li', {class: 'muted'}, 'No events loaded yet.') : list.map((ev) => h('li', {'data-type': ev.type},
      h('span', {class: 'ev-type'}, EVENT_LABEL[ev.type] || ev.type), ' ',
      h('span', {class: 'muted'}, fmtDateTime(ev.occurred_at)),
      h('div', {class: 'ev-text'}, describe(ev)))));
  } else {
    replace(tl, h('li', {class: 'error'}, `Events unavailable: ${events.reason.message}`));
  }
}

// Moderators' history: every decision with who, when and why.
import {h, replace, table, fmtDateTime, downloadCSV} from '../dom.js';
import {moderationAPI} from '../moderation-api.js';

export async function mount(root) {
  const box = h('div', {id: 'audit'});
  const exportBtn = h('button', {type: 'button', id: 'audit-export'}, 'Export CSV');
  replace(root, h('div', {class: 'row'}, h('h1', {id: 'page-title', style: {margin: 0}}, 'Audit log'), h('span', {class: 'spacer'}), exportBtn),
    h('div', {style: {height: '10px'}}), box);
  const cols = [
    {key: 'at', label: 'When', format: (v) => fmtDateTime(v)},
    {key: 'actor_email', label: 'Moderator', format: (v, r) => v || r.actor_id || ''},
    {key: 'action', label: 'Action'},
    {key: 'item_id', label: 'Item'},
    {key: 'visitor_id', label: 'Visitor'},
    {key: 'reason', label: 'Reason'},
    {key: 'detail', label: 'Detail'},
  ];
  let rows = [];
  try {
    const r = await moderationAPI.audit({limit: 500});
    rows = r.entries || [];
    replace(box, table(cols, rows, {empty: 'No decisions yet.'}));
  } catch (err) {
    replace(box, h('p', {class: 'error'}, `Audit log failed to load: ${err.message}`));
  }
  exportBtn.addEventListener('click', () => downloadCSV('parley-moderation-audit.csv', cols, rows));
}

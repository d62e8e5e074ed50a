// Supervisors' live overview, pushed by the analytics socket (falls back
// to polling every 2 s while the socket is down).
import {h, replace, fmtNumber, fmtDuration, fmtTime, table} from '../dom.js';
import {get, LiveSocket} from '../api.js';
import {analyticsAPI} from '../analytics.js';

const pick = (o, ...keys) => {
  for (const k of keys) {
    const v = k.split('.').reduce((x, part) => (x == null ? undefined : x[part]), o);
    if (v !== undefined && v !== null) return v;
  }
  return undefined;
};

function stat(id, label, value, sub) {
  return h('div', {class: 'card stat', id}, h('div', {class: 'label'}, label), h('div', {class: 'value'}, value), h('div', {class: 'sub'}, sub || '\u00a0'));
}

export async function mount(root) {
  const dot = h('span', {class: 'live-dot', title: 'Live'});
  const updated = h('span', {class: 'muted', id: 'overview-updated'});
  const cards = h('div', {class: 'cards', id: 'overview-cards'});
  const agents = h('div', {id: 'overview-agents'});
  replace(root, h('div', {class: 'row'}, h('h1', {id: 'page-title', style: {margin: 0}}, 'Live overview'), dot, updated),
    h('div', {style: {height: '10px'}}), cards, h('h2', {}, 'Agents'), agents);
  let chatAgents = null;

  function render(o) {
    const csatShare = pick(o, 'csat_today.share', 'csat.share');
    const csatRated = pick(o, 'csat_today.rated', 'csat.rated') || 0;
    replace(cards,
      stat('ov-open', 'Open conversations', fmtNumber(pick(o, 'open_conversations', 'open') ?? 0)),
      stat('ov-waiting', 'Visitors waiting', fmtNumber(pick(o, 'waiting', 'waiting_visitors', 'queue.waiting') ?? 0),
        `longest wait ${fmtDuration(pick(o, 'longest_wait_ms', 'queue.longest_wait_ms') ?? 0)}`),
      stat('ov-missed', 'Missed today', fmtNumber(pick(o, 'missed_today', 'missed') ?? 0)),
      stat('ov-csat', 'CSAT today', csatRated ? `${fmtNumber(csatShare * 100, 0)} %` : '–', `${csatRated} ratings`),
      stat('ov-agents', 'Agents online', fmtNumber(pick(o, 'agents_online', 'agents.online') ?? countStatus(o, 'online')),
        `${countStatus(o, 'away')} away · ${countStatus(o, 'busy')} busy`));
    const list = pick(o, 'agents_list', 'agent_list') || (Array.isArray(o.agents) ? o.agents : null) || chatAgents || [];
    replace(agents, table([
      {key: 'name', label: 'Agent'},
      {key: 'status', label: 'Status'},
      {key: 'load', label: 'Open chats', numeric: true, format: (v, r) => r.limit ? `${v ?? 0} / ${r.limit}` : fmtNumber(v ?? 0)},
    ], list, {empty: 'No agent data yet.'}));
    updated.textContent = `Updated ${fmtTime(pick(o, 'computed_at', 'at') || Date.now())}`;
  }

  function countStatus(o, status) {
    const list = Array.isArray(o.agents) ? o.agents : chatAgents || [];
    const direct = pick(o, `agents.${status}`);
    if (typeof direct === 'number') return direct;
    return list.filter((a) => a.status === status || (status === 'busy' && a.limit && a.load >= a.limit)).length;
  }

  let last = {};
  const refresh = async () => {
    try { last = await analyticsAPI.overview(); render(last); } catch (err) { replace(cards, h('p', {class: 'error'}, `Overview unavailable: ${err.message}`)); }
  };
  get('/api/chat/agents').then((r) => { chatAgents = r.agents || []; render(last); }).catch(() => {});
  await refresh();
  let poll = null;
  const sock = new LiveSocket(analyticsAPI.socketPath, {
    onFrame: (f) => {
      if (f.type === 'error') return;
      last = f.overview || f.data || f;
      render(last);
    },
    onStatus: (s) => {
      dot.classList.toggle('open', s === 'open');
      if (s === 'open') { clearInterval(poll); poll = null; } else if (!poll) poll = setInterval(refresh, 2000);
    },
  });
  return () => { sock.close(); clearInterval(poll); };
}

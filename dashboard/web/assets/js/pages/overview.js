// Supervisors' live overview. The conversation numbers are pushed by the
// analytics socket every 2 s (docs/metrics.md "Live overview"; polled
// every 2 s while the socket is down); agents' presence and load come
// from the chat service (GET /api/chat/agents), refreshed as often.
import {h, replace, fmtNumber, fmtDuration, fmtTime, table} from '../dom.js';
import {get, LiveSocket} from '../api.js';
import {analyticsAPI} from '../analytics.js';

const REFRESH_MS = 2000;

function stat(id, label, value, sub) {
  return h('div', {class: 'card stat', id}, h('div', {class: 'label'}, label), h('div', {class: 'value'}, value), h('div', {class: 'sub'}, sub || '\u00a0'));
}

// busy: an agent at or above their concurrent-conversation limit.
const isBusy = (a) => a.status === 'online' && a.limit > 0 && a.load >= a.limit;

export async function mount(root) {
  const dot = h('span', {class: 'live-dot', title: 'Live'});
  const updated = h('span', {class: 'muted', id: 'overview-updated'});
  const cards = h('div', {class: 'cards', id: 'overview-cards'});
  const agentsBox = h('div', {id: 'overview-agents'});
  const pipelineBox = h('p', {class: 'muted', id: 'overview-pipeline'});
  replace(root, h('div', {class: 'row'}, h('h1', {id: 'page-title', style: {margin: 0}}, 'Live overview'), dot, updated),
    h('div', {style: {height: '10px'}}), cards, h('h2', {}, 'Agents'), agentsBox, pipelineBox);

  let overview = null;
  let agents = null;
  let agentsError = '';

  function render() {
    const o = overview || {};
    const csat = o.csat_today || {};
    const list = agents || [];
    const online = list.filter((a) => a.status === 'online' && !isBusy(a)).length;
    const away = list.filter((a) => a.status === 'away').length;
    const busy = list.filter(isBusy).length;
    replace(cards,
      stat('ov-open', 'Open conversations', fmtNumber(o.open ?? 0), `${fmtNumber(o.new_today ?? 0)} new today`),
      stat('ov-waiting', 'Visitors waiting', fmtNumber(o.waiting ?? 0), `longest wait ${o.waiting ? fmtDuration(o.longest_wait_ms) : '–'}`),
      stat('ov-missed', 'Missed today', fmtNumber(o.missed_today ?? 0)),
      stat('ov-csat', 'CSAT today', csat.rated ? `${fmtNumber(csat.share * 100, 0)} %` : '–', `${fmtNumber(csat.rated || 0)} ratings`),
      stat('ov-agents', 'Agents online', agents ? fmtNumber(online + busy) : '–', agents ? `${busy} busy · ${away} away` : agentsError));
    const rows = list.map((a) => ({...a, state: isBusy(a) ? 'busy' : a.status}));
    replace(agentsBox, agentsError && !agents ? h('p', {class: 'error'}, agentsError) : table([
      {key: 'name', label: 'Agent'},
      {key: 'state', label: 'Status'},
      {key: 'load', label: 'Open chats', numeric: true, format: (v, r) => (r.limit ? `${v ?? 0} / ${r.limit}` : fmtNumber(v ?? 0))},
    ], rows, {empty: 'No agents yet.'}));
    if (o.at) updated.textContent = `Updated ${fmtTime(o.at)}`;
    const p = o.pipeline;
    pipelineBox.textContent = p ? (p.paused ? `Analytics loader paused: ${p.last_error || 'store unavailable'}` : `Data is ${fmtDuration(p.freshness_ms || 0)} behind live traffic.`) : '';
  }

  const refreshOverview = async () => {
    try { overview = await analyticsAPI.overview(); render(); } catch (err) { replace(cards, h('p', {class: 'error'}, `Overview unavailable: ${err.message}`)); }
  };
  const refreshAgents = async () => {
    try {
      agents = (await get('/api/chat/agents')).agents || [];
      agentsError = '';
    } catch (err) {
      agentsError = `Agents unavailable: ${err.message}`;
    }
    render();
  };
  await Promise.all([refreshOverview(), refreshAgents()]);
  let poll = null;
  const agentPoll = setInterval(refreshAgents, REFRESH_MS);
  const sock = new LiveSocket(analyticsAPI.socketPath(), {
    onFrame: (f) => {
      if (f.error) { updated.textContent = `Live data paused: ${f.error}`; return; }
      overview = f;
      render();
    },
    onStatus: (s) => {
      dot.classList.toggle('open', s === 'open');
      dot.title = s === 'open' ? 'Live' : 'Reconnecting…';
      if (s === 'open') { clearInterval(poll); poll = null; } else if (!poll) poll = setInterval(refreshOverview, REFRESH_MS);
    },
  });
  return () => { sock.close(); clearInterval(poll); clearInterval(agentPoll); };
}

// Supervisors' live overview. The conversation numbers are pushed by the
// analytics socket every 2 s (docs/metrics.md "Live overview"; polled
// every 2 s while the socket is down); agents' presence and load come
// from the chat service (GET /api/chat/agents), refreshed as often.
import {h, replace, fmtNumber, fmtDuration, fmtTime, table} from '../dom.js';
import {get, LiveSocket} from '../api.js';
import {analyticsAPI} from '../analytics.js';
import {loadPreferences, preferences, sound, desktop, editPreferences} from '../alerts.js';

const REFRESH_MS = 2000;

function stat(id, label, value, sub) {
  return h('div', {class: 'card stat', id}, h('div', {class: 'label'}, label), h('div', {class: 'value'}, value), h('div', {class: 'sub'}, sub || '\u00a0'));
}

// busy: an agent at or above their concurrent-conversation limit.
const isBusy = (a) => a.status === 'online' && a.limit > 0 && a.load >= a.limit;

export async function mount(root, ctx) {
  const dot = h('span', {class: 'live-dot', title: 'Live'});
  const updated = h('span', {class: 'muted', id: 'overview-updated'});
  const cards = h('div', {class: 'cards', id: 'overview-cards'});
  const agentsBox = h('div', {id: 'overview-agents'});
  const pipelineBox = h('p', {class: 'muted', id: 'overview-pipeline'});
  const queueAlert = h('div', {class: 'alert error', id: 'queue-alert', role: 'alert', hidden: true});
  const settingsBtn = h('button', {type: 'button', class: 'small', id: 'notification-settings-open', onclick: () => editPreferences(ctx.user)}, 'Notification settings');
  replace(root, h('div', {class: 'row'}, h('h1', {id: 'page-title', style: {margin: 0}}, 'Live overview'), dot, updated, h('span', {class: 'spacer'}), settingsBtn),
    queueAlert, h('div', {style: {height: '10px'}}), cards, h('h2', {}, 'Agents'), agentsBox, pipelineBox);
  loadPreferences();
  let alerting = false;

  // checkQueue raises the queue alert when the longest wait passes the
  // supervisor's threshold (notification settings), once per crossing.
  function checkQueue(o) {
    const limit = Number(preferences().queue_alert_minutes) || 0;
    const over = limit > 0 && (o.waiting ?? 0) > 0 && (o.longest_wait_ms ?? 0) > limit * 60000;
    queueAlert.hidden = !over;
    if (over) {
      queueAlert.textContent = `A visitor has been waiting ${fmtDuration(o.longest_wait_ms)} (${fmtNumber(o.waiting)} waiting; your alert is at ${fmtDuration(limit * 60000)}).`;
      if (!alerting) {
        sound('conversation');
        desktop('queue', 'Visitors are waiting', queueAlert.textContent);
      }
    }
    alerting = over;
  }

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
    const sla = o.sla_today || {};
    const judged = (sla.met || 0) + (sla.breached || 0);
    replace(cards,
      stat('ov-open', 'Open conversations', fmtNumber(o.open ?? 0), `${fmtNumber(o.new_today ?? 0)} new chats, ${fmtNumber(o.offline_today ?? 0)} offline messages today`),
      stat('ov-waiting', 'Visitors waiting', fmtNumber(o.waiting ?? 0), `longest wait ${o.waiting ? fmtDuration(o.longest_wait_ms) : '–'}`),
      stat('ov-sla', 'First responses within target', judged ? `${fmtNumber(sla.share * 100, 0)} %` : '–', `${fmtNumber(sla.met || 0)} of ${fmtNumber(judged)} today`),
      stat('ov-missed', 'Missed today', fmtNumber(o.missed_today ?? 0), `${fmtNumber(o.late_today ?? 0)} answered late`),
      stat('ov-csat', 'CSAT today', csat.rated ? `${fmtNumber(csat.share * 100, 0)} %` : '–',
        `${fmtNumber(csat.rated || 0)} ratings · ${csat.offered ? `${fmtNumber(csat.response_rate * 100, 0)} % of ${fmtNumber(csat.offered)} surveys answered` : 'no surveys yet'}`),
      stat('ov-agents', 'Agents online', agents ? fmtNumber(online + busy) : '–', agents ? `${busy} busy · ${away} away` : agentsError));
    const rows = list.map((a) => ({...a, state: isBusy(a) ? 'busy' : a.status}));
    replace(agentsBox, agentsError && !agents ? h('p', {class: 'error'}, agentsError) : table([
      {key: 'name', label: 'Agent'},
      {key: 'state', label: 'Status'},
      {key: 'load', label: 'Open chats', numeric: true, format: (v, r) => (r.limit ? `${v ?? 0} / ${r.limit}` : fmtNumber(v ?? 0))},
    ], rows, {empty: 'No agents yet.'}));
    if (o.at) updated.textContent = `Updated ${fmtTime(o.at)}`;
    checkQueue(o);
    const p = o.pipeline;
    pipelineBox.textContent = !p ? '' : p.paused ? `Analytics loader paused: ${p.last_error || 'store unavailable'}`
      : p.lag > 0 ? `Reports are catching up: ${fmtNumber(p.lag)} events to load; the newest loaded is ${fmtDuration(p.freshness_ms || 0)} old.`
        : `Up to date${p.newest_event_at ? ` (newest event ${fmtDuration(p.freshness_ms || 0)} ago)` : ''}.`;
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

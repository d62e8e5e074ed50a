// The analytics API (package analytics, docs/metrics.md "Query API") in
// one place. Every route needs the supervisor role.
import {get, query} from './api.js';
import {viewerTZ} from './timerange.js';

// rangeParams turns a page's query state into the common parameters:
// from, to (RFC 3339), tz, bucket, split, clock and the filters.
export function rangeParams({from, to, bucket, filters = {}, split, clock}) {
  return {
    from: from.toISOString(), to: to.toISOString(), tz: viewerTZ, bucket, split,
    clock: clock === 'calendar' ? '' : clock,
    site: filters.site, team: filters.team, agent: filters.agent, channel: filters.channel,
    business_hours: filters.business_hours,
  };
}

// DRILL_METRICS are the metric names /conversations and /export.csv accept.
export const DRILL_METRICS = ['new', 'offline', 'resolved', 'reopened', 'missed', 'late', 'sla_met', 'sla_breached', 'handled',
  'first_response', 'reply_time', 'queue_wait', 'resolution', 'resolution_last', 'closed_inactive', 'csat', 'csat_positive',
  'csat_1', 'csat_2', 'csat_3', 'csat_4', 'csat_5', 'surveys', 'engagements', 'transfers_in', 'transfers_out'];

// drillParams are the drill-down selection: point (a bucket label of the
// report), key (the series key when split), metric and limit.
function drillParams({point, key, metric, limit} = {}) {
  return {point, key, metric, limit};
}

export const analyticsAPI = {
  // GET /api/analytics/report → {series:[{key, points:[Point]}], ...}
  report: (p) => get('/api/analytics/report' + query(rangeParams(p))),
  // GET /api/analytics/conversations → {conversations:[facts + missed], limit, truncated}
  conversations: (p, drill) => get('/api/analytics/conversations' + query({...rangeParams(p), ...drillParams(drill)})),
  // GET /api/analytics/export.csv: the same selection as a CSV download.
  exportURL: (p, drill) => '/api/analytics/export.csv' + query({...rangeParams(p), ...drillParams(drill)}),
  // GET /api/analytics/overview?tz=&site= → the live overview
  overview: (site) => get('/api/analytics/overview' + query({tz: viewerTZ, site})),
  // GET /api/analytics/agents → {agents:[{agent_id, handled, max_concurrent, avg_concurrent, online_ms, away_ms}]}
  agentLoad: (p) => get('/api/analytics/agents' + query(rangeParams({...p, bucket: ''}))),
  // GET /api/analytics/moderation → {items, decisions, moderators, time_to_review, approved_share, backlog, series}
  moderation: (p) => get('/api/analytics/moderation' + query(rangeParams(p))),
  // GET /api/analytics/moderation/items → {items:[moderation facts], limit, truncated}
  moderationItems: (p, drill) => get('/api/analytics/moderation/items' + query({...rangeParams(p), ...drill})),
  // GET /api/analytics/sites → {sites:[{id, name, timezone, first_response_target_s, reply_target_s, deleted}]}
  sites: () => get('/api/analytics/sites'),
  // GET /api/analytics/pipeline → {store, ready, error?, loader}
  pipeline: () => get('/api/analytics/pipeline'),
  // WebSocket pushing the overview every 2 s.
  socketPath: (site) => '/ws/analytics' + query({tz: viewerTZ, site}),
};

// Facts of a drilled-down conversation are kept for its transcript page,
// which builds the timeline from them (analytics has no per-event API).
const FACTS_KEY = 'parley.facts.';

export function rememberFacts(row) {
  try { sessionStorage.setItem(FACTS_KEY + row.conversation_id, JSON.stringify(row)); } catch { /* storage full or off */ }
}

export function recalledFacts(id) {
  try { return JSON.parse(sessionStorage.getItem(FACTS_KEY + id) || 'null'); } catch { return null; }
}

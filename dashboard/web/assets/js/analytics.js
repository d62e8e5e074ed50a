// The analytics API (package analytics, docs/metrics.md) in one place.
import {get, query} from './api.js';
import {viewerTZ} from './timerange.js';

export function rangeParams({from, to, bucket, filters = {}, split, clock}) {
  return {
    from: from.toISOString(), to: to.toISOString(), tz: viewerTZ, bucket, split, clock,
    site: filters.site, team: filters.team, agent: filters.agent, channel: filters.channel,
    business_hours: filters.business_hours,
  };
}

export const analyticsAPI = {
  report: (p) => get('/api/analytics/report' + query(rangeParams(p))),
  conversations: (p, extra = {}) => get('/api/analytics/conversations' + query({...rangeParams(p), ...extra})),
  exportURL: (p, extra = {}) => '/api/analytics/export.csv' + query({...rangeParams(p), ...extra}),
  overview: () => get('/api/analytics/overview'),
  agentLoad: (p) => get('/api/analytics/agent-load' + query(rangeParams(p))),
  events: (id) => get(`/api/analytics/conversations/${encodeURIComponent(id)}/events`),
  socketPath: '/ws/analytics',
};

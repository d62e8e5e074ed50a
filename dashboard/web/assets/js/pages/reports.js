// Supervisors' reports: charts over a chosen range in the viewer's time
// zone, filters, tables per agent/team/site, drill-down from any point or
// row to the conversations behind it, and CSV export of what is shown.
import {h, replace, toast, table, fmtNumber, fmtDuration, fmtDateTime, downloadCSV} from '../dom.js';
import {get} from '../api.js';
import {chart} from '../chart.js';
import {analyticsAPI, rememberFacts} from '../analytics.js';
import {PRESETS, presetRange, customRange, autoBucket, dateInput, viewerTZ} from '../timerange.js';

const pct = (t) => (t.met + t.breached ? t.share * 100 : null);

// Each chart series: [name, value of a point, drill-down metric].
const CHARTS = [
  {id: 'volume', title: 'Conversations', type: 'bar', unit: 'count', unitLabel: 'conversations',
    series: [['New chats', (p) => p.conversations.new, 'new'], ['Resolved', (p) => p.conversations.resolved, 'resolved'],
      ['Missed', (p) => p.conversations.missed, 'missed'], ['Answered late', (p) => p.conversations.late, 'late'],
      ['Offline messages', (p) => p.conversations.offline, 'offline']]},
  {id: 'sla', title: 'Service level (share within the site\'s targets)', type: 'line', unit: 'percent',
    series: [['First responses', (p) => pct(p.sla.first_response), 'sla_breached'], ['Later replies', (p) => pct(p.sla.replies), 'reply_time']]},
  {id: 'first-response', title: 'First response time', type: 'line', unit: 'duration',
    metric: 'first_response',
    series: [['Median', (p) => (p.first_response.count ? p.first_response.median_ms : null)], ['p90', (p) => (p.first_response.count ? p.first_response.p90_ms : null)]]},
  {id: 'reply-time', title: 'Reply time', type: 'line', unit: 'duration',
    metric: 'reply_time',
    series: [['Median', (p) => (p.reply_time.count ? p.reply_time.median_ms : null)], ['p90', (p) => (p.reply_time.count ? p.reply_time.p90_ms : null)]]},
  {id: 'resolution', title: 'Resolution time (median)', type: 'line', unit: 'duration',
    series: [['First close', (p) => (p.resolution.count ? p.resolution.median_ms : null), 'resolution'],
      ['Last close', (p) => (p.resolution_last.count ? p.resolution_last.median_ms : null), 'resolution_last']]},
  {id: 'closed-by', title: 'Closed by', type: 'bar', unit: 'count', unitLabel: 'conversations', stacked: true, metric: 'resolved',
    series: [['Agent', (p) => p.conversations.closed_by.agent], ['Bot', (p) => p.conversations.closed_by.bot],
      ['Visitor', (p) => p.conversations.closed_by.visitor], ['Inactivity', (p) => p.conversations.closed_by.inactive, 'closed_inactive']]},
  {id: 'csat', title: 'CSAT (by rating time)', type: 'line', unit: 'percent',
    series: [['Positive (4–5)', (p) => (p.csat.rated ? p.csat.share * 100 : null), 'csat_positive'],
      ['Response rate', (p) => (p.csat.offered ? p.csat.response_rate * 100 : null), 'surveys']]},
  {id: 'csat-ratings', title: 'CSAT ratings', type: 'bar', unit: 'count', unitLabel: 'ratings', stacked: true,
    series: [1, 2, 3, 4, 5].map((r) => [`${r}`, (p) => p.csat.ratings[r - 1], `csat_${r}`])},
  {id: 'messages', title: 'Messages', type: 'bar', unit: 'count', unitLabel: 'messages', stacked: true, metric: '',
    series: [['Visitors', (p) => p.messages.visitor], ['Agents', (p) => p.messages.agent], ['Bot', (p) => p.messages.bot]]},
];

const pctCol = (key, label) => ({key, label, numeric: true, format: (v) => (v === null ? '–' : `${fmtNumber(v * 100, 0)} %`)});
const durCol = (key, label) => ({key, label, numeric: true, format: (v) => fmtDuration(v)});
const numCol = (key, label) => ({key, label, numeric: true, format: (v) => fmtNumber(v)});

// Conversation figures (by site; the conversation's last agent or team).
const SITE_COLUMNS = [
  numCol('new', 'New'), numCol('resolved', 'Resolved'), numCol('missed', 'Missed'), numCol('late', 'Late'),
  durCol('frt', 'First response (median)'), durCol('frt90', 'First response (p90)'), pctCol('sla', 'SLA first response'),
  durCol('res', 'Resolution (median)'), pctCol('reopen', 'Reopen rate'), pctCol('csat', 'CSAT'),
];

// Engagement figures (each agent's or team's part of conversations).
const ENGAGEMENT_COLUMNS = [
  numCol('engagements', 'Engagements'), numCol('tin', 'Transfers in'), numCol('tout', 'Transfers out'),
  durCol('efr', 'First response (median)'), durCol('erep', 'Reply (median)'), durCol('ehand', 'Handling (median)'),
  pctCol('esla', 'SLA first response'), pctCol('ereplies', 'SLA replies'), numCol('resolved', 'Resolved'), pctCol('csat', 'CSAT'),
];

function summary(p) {
  const share = (t) => (t.met + t.breached ? t.share : null);
  const e = p.engagements;
  return {
    new: p.conversations.new, resolved: p.conversations.resolved, missed: p.conversations.missed, late: p.conversations.late,
    frt: p.first_response.count ? p.first_response.median_ms : null, frt90: p.first_response.count ? p.first_response.p90_ms : null,
    sla: share(p.sla.first_response), res: p.resolution.count ? p.resolution.median_ms : null,
    reopen: p.conversations.resolved ? p.conversations.reopen_rate : null, csat: p.csat.rated ? p.csat.share : null,
    engagements: e.count, tin: e.transfers_in, tout: e.transfers_out,
    efr: e.first_response.count ? e.first_response.median_ms : null, erep: e.reply_time.count ? e.reply_time.median_ms : null,
    ehand: e.handling.count ? e.handling.median_ms : null, esla: share(e.sla.first_response), ereplies: share(e.sla.replies),
  };
}

export async function mount(root, ctx) {
  const params = ctx.params;
  const state = {
    preset: params.get('range') || '7d',
    from: params.get('from') || '', to: params.get('to') || '',
    bucket: params.get('bucket') || 'auto',
    filters: {site: params.get('site') || '', team: params.get('team') || '', agent: params.get('agent') || '',
      channel: params.get('channel') || '', business_hours: params.get('business_hours') || ''},
    clock: params.get('clock') || 'calendar',
  };
  const names = {agent: {}, team: {}, site: {}};
  const sel = (id, label, options, value) => h('div', {class: 'group'}, h('label', {for: id}, label),
    h('select', {id, 'data-key': id}, options.map(([v, l]) => h('option', {value: v, selected: v === value}, l))));

  const presetSel = sel('range', 'Range', PRESETS, state.preset);
  const fromIn = h('input', {type: 'date', id: 'from', value: state.from});
  const toIn = h('input', {type: 'date', id: 'to', value: state.to});
  const customBox = h('div', {class: 'row', hidden: state.preset !== 'custom'},
    h('div', {class: 'group'}, h('label', {for: 'from'}, 'From'), fromIn),
    h('div', {class: 'group'}, h('label', {for: 'to'}, 'To'), toIn));
  const bucketSel = sel('bucket', 'Step', [['auto', 'Auto'], ['hour', 'Hour'], ['day', 'Day'], ['week', 'Week']], state.bucket);
  const siteSel = sel('site', 'Site', [['', 'All sites']], state.filters.site);
  const teamSel = sel('team', 'Team', [['', 'All teams']], state.filters.team);
  const agentSel = sel('agent', 'Agent', [['', 'All agents']], state.filters.agent);
  const channelSel = sel('channel', 'Channel', [['', 'All channels'], ['widget', 'Widget'], ['offline_form', 'Offline form'], ['api', 'API']], state.filters.channel);
  const hoursSel = sel('business_hours', 'Business hours', [['', 'Any time'], ['in', 'Inside hours'], ['out', 'Outside hours']], state.filters.business_hours);
  const clockSel = sel('clock', 'Durations', [['calendar', 'Calendar time'], ['business', 'Business time']], state.clock);
  const exportBtn = h('button', {type: 'button', id: 'export-csv'}, 'Export CSV');
  const status = h('p', {class: 'muted', id: 'report-status'});
  const chartsBox = h('div', {class: 'grid-2', id: 'charts'});
  const drill_ = h('section', {id: 'drilldown'});
  const loadChartBox = h('div', {});
  const loadTable = h('div', {id: 'agent-load-table'});
  const loadBox = h('section', {class: 'card', id: 'chart-agent-load'}, h('h2', {style: {marginTop: 0}}, 'Agent load'), loadChartBox, loadTable);
  let loadChart = null;
  const tablesBox = h('div', {id: 'split-tables'});
  replace(root,
    h('h1', {id: 'page-title'}, 'Reports'),
    h('div', {class: 'toolbar', role: 'search', 'aria-label': 'Report filters'},
      presetSel, customBox, bucketSel, siteSel, teamSel, agentSel, channelSel, hoursSel, clockSel, h('span', {class: 'spacer'}), exportBtn),
    status, chartsBox, loadBox, drill_, tablesBox);

  const charts = {};
  for (const c of CHARTS) {
    const box = h('div', {class: 'card', id: `chart-${c.id}`}, h('h2', {style: {marginTop: 0}}, c.title));
    chartsBox.append(box);
    charts[c.id] = {def: c, box, chart: null};
  }

  // Names for filters and tables.
  const fill = (selEl, entries) => {
    const s = selEl.querySelector('select');
    const keep = s.value;
    for (const [v, l] of entries) s.append(h('option', {value: v, selected: v === keep}, l));
  };
  try {
    const dir = await get('/api/auth/staff');
    for (const u of dir.staff || []) names.agent[u.id] = u.name;
    for (const t of dir.teams || []) names.team[t.id] = t.name;
    fill(agentSel, (dir.staff || []).filter((u) => u.roles.includes('agent') || u.roles.includes('admin')).map((u) => [u.id, u.name]));
    fill(teamSel, (dir.teams || []).map((t) => [t.id, t.name]));
  } catch (err) { toast(`Staff names unavailable: ${err.message}`, 'error'); }
  // The sites the user works on (every site for admins), from analytics.
  try {
    const r = await analyticsAPI.sites();
    for (const s of r.sites || []) names.site[s.id] = s.name + (s.deleted ? ' (deleted)' : '');
    fill(siteSel, (r.sites || []).map((s) => [s.id, names.site[s.id]]));
  } catch (err) { toast(`Site names unavailable: ${err.message}`, 'error'); }

  function range() {
    if (state.preset === 'custom') return customRange(fromIn.value, toIn.value);
    return presetRange(state.preset);
  }

  let current = null; // {from, to, bucket, report, xs}

  function syncURL() {
    ctx.setQuery(Object.fromEntries(Object.entries({range: state.preset, from: state.preset === 'custom' ? fromIn.value : '',
      to: state.preset === 'custom' ? toIn.value : '', bucket: state.bucket === 'auto' ? '' : state.bucket,
      clock: state.clock === 'calendar' ? '' : state.clock, ...state.filters}).filter(([, v]) => v)));
  }

  async function load() {
    let from;
    let to;
    try { [from, to] = range(); } catch (err) { status.textContent = err.message; return; }
    const bucket = state.bucket === 'auto' ? autoBucket(from, to) : state.bucket;
    syncURL();
    status.textContent = 'Loading…';
    const q = {from, to, bucket, filters: {...state.filters}, clock: state.clock};
    let report;
    try {
      report = await analyticsAPI.report(q);
    } catch (err) {
      status.textContent = `Report failed: ${err.message}`;
      return;
    }
    const series = report.series[0] || {points: []};
    const xs = series.points.map((p) => Date.parse(p.bucket));
    current = {q, report, xs, points: series.points};
    const total = series.points.reduce((n, p) => n + p.conversations.new, 0);
    status.textContent = `${fmtDateTime(from)} – ${fmtDateTime(to)} · ${viewerTZ} · by ${bucket} · ${fmtNumber(total)} conversations`;
    status.dataset.total = String(total);
    for (const {def, box, chart: existing} of Object.values(charts)) {
      const opts = {
        type: def.type, stacked: def.stacked, unit: def.unit, unitLabel: def.unitLabel, title: def.title,
        x: xs, xKind: 'time', bucket, tz: viewerTZ, height: 220,
        series: def.series.map(([name, fn]) => ({name, values: series.points.map(fn)})),
        empty: 'No conversations in this range.',
        onSelect: (i, k) => drillDown({index: i, metric: def.series[k]?.[2] ?? def.metric ?? ''}),
      };
      if (existing) existing.update(opts); else charts[def.id].chart = chart(box, opts);
    }
    loadAgentLoad(q);
    loadTables(q);
  }

  // Agent load: conversations owned at once per agent over the range, and online time.
  async function loadAgentLoad(q) {
    let rows;
    try {
      rows = (await analyticsAPI.agentLoad(q)).agents || [];
    } catch (err) {
      replace(loadBox, h('h2', {style: {marginTop: 0}}, 'Agent load'), h('p', {class: 'error'}, `Agent load failed: ${err.message}`));
      return;
    }
    rows.sort((a, b) => b.handled - a.handled);
    const labels = rows.map((r) => names.agent[r.agent_id] || r.agent_id);
    const opts = {
      type: 'bar', unit: 'count', unitLabel: 'conversations at once', title: 'Agent load',
      x: labels, xKind: 'category', height: 220,
      series: [{name: 'Most at once', values: rows.map((r) => r.max_concurrent)}, {name: 'Average at once', values: rows.map((r) => r.avg_concurrent)}],
      empty: 'No agent owned a conversation in this range.',
      onSelect: (i) => drillDown({metric: 'handled', filter: {agent: rows[i].agent_id}, label: labels[i]}),
    };
    if (loadChart) loadChart.update(opts);
    else loadChart = chart(loadChartBox, opts);
    replace(loadTable, table([
      {key: 'name', label: 'Agent'},
      {key: 'handled', label: 'Conversations handled', numeric: true, format: (v) => fmtNumber(v)},
      {key: 'max_concurrent', label: 'Most at once', numeric: true, format: (v) => fmtNumber(v)},
      {key: 'avg_concurrent', label: 'Average at once', numeric: true, format: (v) => fmtNumber(v, 2)},
      {key: 'online_ms', label: 'Online', numeric: true, format: (v) => fmtDuration(v || 0)},
      {key: 'away_ms', label: 'Away', numeric: true, format: (v) => fmtDuration(v || 0)},
    ], rows.map((r, i) => ({...r, name: labels[i]})), {
      empty: 'No agent was online or owned a conversation in this range.',
      onRow: (row) => drillDown({metric: 'handled', filter: {agent: row.agent_id}, label: row.name}),
    }));
  }

  async function loadTables(q) {
    const parts = [];
    for (const [dim, label] of [['agent', 'By agent'], ['team', 'By team'], ['site', 'By site']]) {
      const columns = dim === 'site' ? SITE_COLUMNS : ENGAGEMENT_COLUMNS;
      try {
        const r = await analyticsAPI.report({...q, bucket: '', split: dim});
        if (dim === 'site') {
          const unknown = r.series.map((x) => x.key).filter((k) => k && !(k in names.site));
          for (const k of unknown) names.site[k] = k;
          fill(siteSel, unknown.map((k) => [k, k]));
        }
        const rows = r.series.filter((s) => s.points.length).map((s) => ({key: s.key, name: names[dim][s.key] || s.key || '(none)', ...summary(s.points[0])}))
          .filter((row) => dim === 'site' || row.engagements > 0 || row.new > 0);
        const note = dim === 'site' ? 'Conversations started in the range.'
          : `Engagements: each ${dim === 'agent' ? 'agent' : 'team'}'s part of the conversations (transfers split a conversation); resolved and CSAT belong to the last owner.`;
        parts.push(h('section', {id: `table-${dim}`}, h('h2', {}, label), h('p', {class: 'muted'}, note),
          table([{key: 'name', label: label.replace('By ', '')}, ...columns], rows, {
            empty: 'No conversations in this range.',
            onRow: (row) => { if (row.key) drillDown({filter: {[dim]: row.key}, metric: dim === 'site' ? '' : 'engagements', label: row.name}); },
          })));
      } catch (err) {
        parts.push(h('p', {class: 'error'}, `${label}: ${err.message}`));
      }
    }
    replace(tablesBox, parts);
  }

  // drillDown lists the conversations behind a chart point (index into the
  // report's buckets, the API's `point`), a metric, or a table row (filter).
  async function drillDown({index = null, metric = '', filter = {}, label = ''} = {}) {
    if (!current) return;
    const q = {...current.q, filters: {...current.q.filters, ...filter}};
    const drill = {metric};
    let from = q.from;
    let to = q.to;
    if (index !== null && current.points[index]) {
      drill.point = current.points[index].bucket;
      from = new Date(current.xs[index]);
      to = index + 1 < current.xs.length ? new Date(current.xs[index + 1]) : q.to;
    }
    const title = `Conversations ${label ? `of ${label} ` : ''}${fmtDateTime(from)} – ${fmtDateTime(to)}${metric ? ` (${metric.replace('_', ' ')})` : ''}`;
    replace(drill_, h('h2', {}, title), h('p', {class: 'muted'}, 'Loading…'));
    try {
      const r = await analyticsAPI.conversations(q, drill);
      const list = r.conversations || [];
      const cols = [
        {key: 'started_at', label: 'Started', format: (v) => fmtDateTime(v)},
        {key: 'visitor_id', label: 'Visitor'},
        {key: 'agent_id', label: 'Agent', format: (v) => names.agent[v] || v || '–'},
        {key: 'site_id', label: 'Site', format: (v) => names.site[v] || v || ''},
        {key: 'channel', label: 'Channel'},
        {key: 'status', label: 'Status', render: (row) => (row.missed ? 'missed' : row.sla === 2 ? 'answered late' : row.open ? 'open' : row.resolved_at ? 'resolved' : 'closed')},
        {key: 'first_response_ms', label: 'First response', numeric: true, format: (v) => (v >= 0 ? (v < 1000 ? `${fmtNumber(v)} ms` : fmtDuration(v)) : '–')},
        {key: 'csat', label: 'CSAT', numeric: true, format: (v, r) => (v ? `${v}/5${r.csat_comment ? ' “' + r.csat_comment + '”' : ''}` : '–')},
        {key: 'reason', label: 'Why', render: (row) => row.reason || ''},
      ];
      replace(drill_, h('div', {class: 'row'}, h('h2', {}, title), h('span', {class: 'spacer'}),
        h('a', {class: 'button', href: analyticsAPI.exportURL(q, drill), download: 'conversations.csv', id: 'drill-export'}, 'Download CSV')),
      r.truncated ? h('p', {class: 'muted'}, `Showing the first ${r.limit}; download the CSV for all of them.`) : null,
      table(cols, list, {empty: 'No conversations behind this point.', onRow: (row) => {
        rememberFacts(row);
        ctx.navigate(`/app/conversations/${encodeURIComponent(row.conversation_id)}`);
      }}));
      drill_.dataset.count = String(list.length);
      drill_.scrollIntoView({block: 'start', behavior: matchMedia('(prefers-reduced-motion: reduce)').matches ? 'auto' : 'smooth'});
    } catch (err) {
      replace(drill_, h('h2', {}, title), h('p', {class: 'error'}, `Drill-down failed: ${err.message}`));
    }
  }

  exportBtn.addEventListener('click', () => {
    if (!current) return;
    const cols = [{key: 'bucket', label: 'Bucket start'},
      ...CHARTS.flatMap((c) => c.series.map(([name, fn]) => ({label: `${c.title} ${name}`, csv: (p) => fn(p)})))];
    downloadCSV(`parley-report-${dateInput(current.q.from)}.csv`, cols, current.points);
  });

  root.addEventListener('change', (e) => {
    const t = e.target;
    if (t === presetSel.querySelector('select')) {
      state.preset = t.value;
      customBox.hidden = state.preset !== 'custom';
      if (state.preset === 'custom' && !fromIn.value) {
        const [f, to] = presetRange('7d');
        fromIn.value = dateInput(f);
        toIn.value = dateInput(new Date(to - 86400000));
      }
    } else if (t === bucketSel.querySelector('select')) state.bucket = t.value;
    else if (t === clockSel.querySelector('select')) state.clock = t.value;
    else if (t.dataset.key && t.dataset.key in state.filters) state.filters[t.dataset.key] = t.value;
    else if (t !== fromIn && t !== toIn) return;
    load();
  });

  await load();
  return () => { for (const c of Object.values(charts)) c.chart?.destroy(); loadChart?.destroy(); };
}

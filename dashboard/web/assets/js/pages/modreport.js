// Moderation report for supervisors and moderators: flagged, blocked and
// redacted volume by site and category, time from flag to decision,
// decisions by moderator, the share approved (a false-positive signal)
// and the queue backlog over time, with drill-down from every number to
// the messages behind it (docs/metrics.md, "Moderation").
import {h, replace, table, fmtNumber, fmtDuration, fmtDateTime} from '../dom.js';
import {get} from '../api.js';
import {chart} from '../chart.js';
import {analyticsAPI} from '../analytics.js';
import {PRESETS, presetRange, customRange, autoBucket, dateInput, viewerTZ} from '../timerange.js';

function stat(id, label, value, sub) {
  return h('div', {class: 'card stat', id}, h('div', {class: 'label'}, label), h('div', {class: 'value'}, value), h('div', {class: 'sub'}, sub || '\u00a0'));
}

export async function mount(root, ctx) {
  const params = ctx.params;
  const state = {preset: params.get('range') || '30d', from: params.get('from') || '', to: params.get('to') || '', site: params.get('site') || ''};
  const names = {site: {}, staff: {}};
  const presetSel = h('select', {id: 'range'}, PRESETS.map(([v, l]) => h('option', {value: v, selected: v === state.preset}, l)));
  const fromIn = h('input', {type: 'date', id: 'from', value: state.from});
  const toIn = h('input', {type: 'date', id: 'to', value: state.to});
  const customBox = h('div', {class: 'row', hidden: state.preset !== 'custom'},
    h('div', {class: 'group'}, h('label', {for: 'from'}, 'From'), fromIn),
    h('div', {class: 'group'}, h('label', {for: 'to'}, 'To'), toIn));
  const siteSel = h('select', {id: 'site'}, h('option', {value: ''}, 'All sites'));
  const status = h('p', {class: 'muted', id: 'modreport-status'});
  const cards = h('div', {class: 'cards', id: 'modreport-cards'});
  const chartBox = h('div', {});
  const tablesBox = h('div', {class: 'grid-2', id: 'modreport-tables'});
  const drill = h('section', {id: 'modreport-drilldown'});
  replace(root,
    h('h1', {id: 'page-title'}, 'Moderation report'),
    h('div', {class: 'toolbar', role: 'search', 'aria-label': 'Report filters'},
      h('div', {class: 'group'}, h('label', {for: 'range'}, 'Range'), presetSel), customBox,
      h('div', {class: 'group'}, h('label', {for: 'site'}, 'Site'), siteSel)),
    status, cards, h('section', {class: 'card', id: 'chart-moderation'}, h('h2', {style: {marginTop: 0}}, 'Flags and backlog'), chartBox),
    tablesBox, drill);
  let modChart = null;
  let current = null;

  get('/api/auth/staff').then((r) => { for (const u of r.staff || []) names.staff[u.id] = u.name; }).catch(() => {});
  analyticsAPI.sites().then((r) => {
    for (const s of r.sites || []) {
      names.site[s.id] = s.name + (s.deleted ? ' (deleted)' : '');
      siteSel.append(h('option', {value: s.id, selected: s.id === state.site}, names.site[s.id]));
    }
  }).catch(() => { /* site ids stand in */ });

  function range() {
    if (state.preset === 'custom') return customRange(fromIn.value, toIn.value);
    return presetRange(state.preset);
  }

  async function load() {
    let from;
    let to;
    try { [from, to] = range(); } catch (err) { status.textContent = err.message; return; }
    const bucket = autoBucket(from, to);
    ctx.setQuery(Object.fromEntries(Object.entries({range: state.preset, from: state.preset === 'custom' ? fromIn.value : '',
      to: state.preset === 'custom' ? toIn.value : '', site: state.site}).filter(([, v]) => v)));
    const q = {from, to, bucket, filters: {site: state.site}};
    status.textContent = 'Loading…';
    let r;
    try {
      r = await analyticsAPI.moderation(q);
    } catch (err) {
      status.textContent = `Moderation report failed: ${err.message}`;
      return;
    }
    current = {q, r};
    const flagged = r.series.reduce((n, p) => n + p.flagged, 0);
    const blocked = r.series.reduce((n, p) => n + p.blocked, 0);
    const redacted = r.series.reduce((n, p) => n + p.redacted, 0);
    const decided = r.decisions.reduce((n, d) => n + d.count, 0);
    status.textContent = `${fmtDateTime(from)} – ${fmtDateTime(to)} · ${viewerTZ} · by ${bucket}`;
    status.dataset.flagged = String(flagged);
    replace(cards,
      stat('mr-flagged', 'Flagged', fmtNumber(flagged), `${fmtNumber(blocked)} blocked · ${fmtNumber(redacted)} redacted`),
      stat('mr-review', 'Flag to decision (median)', r.time_to_review.count ? fmtDuration(r.time_to_review.median_ms) : '–',
        r.time_to_review.count ? `p90 ${fmtDuration(r.time_to_review.p90_ms)} · ${fmtNumber(decided)} decisions` : 'no decisions'),
      stat('mr-approved', 'Approved (false positives)', decided ? `${fmtNumber(r.approved_share * 100, 0)} %` : '–', 'of the decisions in the range'),
      stat('mr-backlog', 'Waiting for review', fmtNumber(r.backlog), 'at the end of the range'));
    const xs = r.series.map((p) => Date.parse(p.bucket));
    const opts = {
      type: 'bar', unit: 'count', unitLabel: 'messages', title: 'Flags and backlog', x: xs, xKind: 'time', bucket, tz: viewerTZ, height: 220,
      series: [{name: 'Flagged', values: r.series.map((p) => p.flagged)}, {name: 'Blocked', values: r.series.map((p) => p.blocked)},
        {name: 'Decided', values: r.series.map((p) => p.decided)}, {name: 'Backlog at end', values: r.series.map((p) => p.backlog)}],
      empty: 'Nothing flagged in this range.',
      onSelect: (i, k) => drillDown({what: ['items', 'items', 'decisions', 'backlog'][k], action: ['flag', 'block', '', ''][k], point: r.series[i].bucket,
        label: `${['Flagged', 'Blocked', 'Decided', 'Waiting'][k]} ${fmtDateTime(xs[i])}`}),
    };
    if (modChart) modChart.update(opts); else modChart = chart(chartBox, opts);
    const site = (id) => names.site[id] || id;
    const who = (id) => names.staff[id] || id;
    replace(tablesBox,
      h('section', {id: 'modreport-items'}, h('h2', {}, 'By site and category'), table([
        {key: 'site_id', label: 'Site', format: site}, {key: 'category', label: 'Category'}, {key: 'action', label: 'Action'},
        {key: 'count', label: 'Messages', numeric: true, format: (v) => fmtNumber(v)},
      ], r.items, {empty: 'Nothing flagged in this range.',
        onRow: (row) => drillDown({what: 'items', item_site: row.site_id, category: row.category, action: row.action, label: `${row.category} (${row.action}) on ${site(row.site_id)}`})})),
      h('section', {id: 'modreport-moderators'}, h('h2', {}, 'Decisions by moderator'), table([
        {key: 'moderator', label: 'Moderator', format: who}, {key: 'decision', label: 'Decision'},
        {key: 'count', label: 'Decisions', numeric: true, format: (v) => fmtNumber(v)},
      ], r.moderators, {empty: 'No decisions in this range.',
        onRow: (row) => drillDown({what: 'decisions', moderator: row.moderator, decision: row.decision, label: `${row.decision} by ${who(row.moderator)}`})})));
  }

  // drillDown lists the verdicts behind a number.
  async function drillDown({label, ...sel}) {
    if (!current) return;
    replace(drill, h('h2', {}, label), h('p', {class: 'muted'}, 'Loading…'));
    try {
      const r = await analyticsAPI.moderationItems(current.q, sel);
      const rows = r.items || [];
      replace(drill, h('h2', {}, label),
        r.truncated ? h('p', {class: 'muted'}, `Showing the first ${r.limit}.`) : null,
        table([
          {key: 'at', label: 'Flagged', format: (v) => fmtDateTime(v)},
          {key: 'site_id', label: 'Site', format: (v) => names.site[v] || v},
          {key: 'categories', label: 'Categories', format: (v) => (v || []).join(', ')},
          {key: 'action', label: 'Action'},
          {key: 'decision', label: 'Decision', format: (v) => v || 'waiting'},
          {key: 'decided_by', label: 'By', format: (v) => (v ? names.staff[v] || v : '')},
          {key: 'decided_at', label: 'Time to decision', numeric: true, render: (row) => (row.decided_at ? fmtDuration(row.decided_at - row.at) : '–')},
        ], rows, {empty: 'Nothing behind this number.',
          // Transcripts are for supervisors; moderators act in the review queue.
          onRow: ctx.session.has('supervisor') ? (row) => ctx.navigate(`/app/conversations/${encodeURIComponent(row.conversation_id)}`) : undefined}));
      drill.dataset.count = String(rows.length);
      drill.scrollIntoView({block: 'start', behavior: 'smooth'});
    } catch (err) {
      replace(drill, h('h2', {}, label), h('p', {class: 'error'}, `Drill-down failed: ${err.message}`));
    }
  }

  root.addEventListener('change', (e) => {
    const t = e.target;
    if (t === presetSel) {
      state.preset = t.value;
      customBox.hidden = state.preset !== 'custom';
      if (state.preset === 'custom' && !fromIn.value) {
        const [f, to] = presetRange('30d');
        fromIn.value = dateInput(f);
        toIn.value = dateInput(new Date(to - 86400000));
      }
    } else if (t === siteSel) state.site = t.value;
    else if (t !== fromIn && t !== toIn) return;
    load();
  });
  await load();
  return () => modChart?.destroy();
}

// Moderators' review queue: offending span highlighted with the
// conversation around it, severity and category, which detector decided
// (rules, the model and its version, a classifier), claim, approve,
// remove, ban with a duration, mark reviewed; one click puts a matched
// term or domain on the site's allow or block list; keyboard shortcuts
// (j/k move, c claim, a approve, r remove, b ban, m mark reviewed, x
// select) and bulk actions. Above the queue, the precision of the
// sites' moderation from moderators' decisions and the labels export.
// The API is moderation/api.go and api_teach.go (moderation-api.js).
import {h, replace, toast, formDialog, fmtDateTime, fmtRelative, fmtNumber} from '../dom.js';
import {get} from '../api.js';
import {moderationAPI, highlight, STATUSES, sourceName, decidingSources, teachable, siteChoices} from '../moderation-api.js';

const BAN_DURATIONS = [['1h', '1 hour'], ['24h', '1 day'], ['7d', '7 days'], ['30d', '30 days'], ['365d', '1 year']];

function severityClass(s) { return s >= 3 ? 'sev-high' : s >= 2 ? 'sev-mid' : ''; }

export async function mount(root, ctx) {
  const state = {items: [], cursor: 0, selected: new Set(), status: ctx.params.get('status') || 'open', category: ctx.params.get('category') || '', counts: {},
    details: new Map(), names: {}};
  const statusSel = h('select', {id: 'queue-status'}, STATUSES
    .map(([v, l]) => h('option', {value: v, selected: v === state.status}, l)));
  get('/api/auth/staff').then((r) => { for (const u of r.staff || []) state.names[u.id] = u.name; render(false); }).catch(() => {});
  const catSel = h('select', {id: 'queue-category'}, h('option', {value: ''}, 'All categories'));
  const bulk = h('div', {class: 'row', id: 'bulk-actions'},
    h('span', {class: 'muted', id: 'selected-count'}, '0 selected'),
    h('button', {type: 'button', class: 'small', onclick: () => bulkDecide('approve')}, 'Approve selected'),
    h('button', {type: 'button', class: 'small', onclick: () => bulkDecide('remove')}, 'Remove selected'),
    h('button', {type: 'button', class: 'small', onclick: () => bulkDecide('reviewed')}, 'Mark selected reviewed'));
  const listEl = h('div', {class: 'queue', id: 'queue', role: 'list', 'aria-label': 'Review queue'});
  const precisionEl = h('details', {class: 'card precision', id: 'precision'},
    h('summary', {}, 'Precision from moderators\' decisions (last 30 days)'), h('p', {class: 'muted'}, 'Loading…'));
  replace(root,
    h('h1', {id: 'page-title'}, 'Review queue'),
    precisionEl,
    h('div', {class: 'toolbar'},
      h('div', {class: 'group'}, h('label', {for: 'queue-status'}, 'Show'), statusSel),
      h('div', {class: 'group'}, h('label', {for: 'queue-category'}, 'Category'), catSel),
      h('span', {class: 'spacer'}), bulk),
    h('p', {class: 'muted'}, 'Keys: ', ...[['j', 'k', 'next/previous'], ['c', 'claim'], ['a', 'approve'], ['r', 'remove'], ['b', 'ban'], ['m', 'mark reviewed'], ['x', 'select']]
      .flatMap((k) => [...k.slice(0, -1).map((x) => h('span', {class: 'kbd'}, x)), ` ${k[k.length - 1]}  `])),
    listEl);

  // The share of the queued items moderators removed, per site, with the
  // categories and the deciding detectors that were right least often.
  let siteNames = null;
  async function loadPrecision() {
    try {
      const r = await moderationAPI.precision({days: 30});
      if (siteNames === null) siteNames = Object.fromEntries((await siteChoices()).map((x) => [x.id, x.name]));
      const pct = (x) => `${fmtNumber(100 * x)}%`;
      const keyed = (rows, label) => rows.length === 0 ? null : h('table', {class: 'data'},
        h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, label), h('th', {scope: 'col', class: 'num'}, 'Precision'),
          h('th', {scope: 'col', class: 'num'}, 'Removed'), h('th', {scope: 'col', class: 'num'}, 'Decided'))),
        h('tbody', {}, rows.map((k) => h('tr', {}, h('td', {}, label === 'Source' ? sourceName(k.key) : k.key),
          h('td', {class: 'num'}, pct(k.precision)), h('td', {class: 'num'}, k.removed), h('td', {class: 'num'}, k.decided)))));
      replace(precisionEl, precisionEl.querySelector('summary'),
        h('p', {class: 'muted'}, 'Of the flagged and blocked items moderators approved or removed, the share they removed. ',
          h('a', {href: moderationAPI.labelsURL({}), download: 'parley-labels.jsonl', id: 'labels-export'}, 'Export labels'),
          ' (JSON lines for retraining the model, see docs/moderation.md).'),
        r.sites.length === 0 ? h('p', {class: 'empty'}, 'No decisions yet.') : r.sites.map((p) => h('div', {class: 'site-precision', 'data-site': p.site_id},
          h('h3', {}, `${siteNames[p.site_id] || `Site ${p.site_id}`}: `, h('strong', {class: 'precision-value'}, pct(p.precision)), ` (${p.removed} of ${p.decided} removed)`),
          h('div', {class: 'row', style: {alignItems: 'flex-start'}}, keyed(p.by_source, 'Source'), keyed(p.by_category, 'Category')))));
    } catch (err) {
      replace(precisionEl, precisionEl.querySelector('summary'), h('p', {class: 'error'}, `Precision failed to load: ${err.message}`));
    }
  }

  async function load() {
    try {
      const r = await moderationAPI.items({status: state.status, category: state.category, limit: 200});
      state.items = r.items || [];
      state.counts = r.counts || {};
      state.cursor = Math.min(state.cursor, Math.max(0, state.items.length - 1));
      const keep = catSel.value;
      replace(catSel, h('option', {value: ''}, 'All categories'),
        Object.entries(state.counts).map(([c, n]) => h('option', {value: c, selected: c === keep}, `${c} (${n})`)));
      render();
    } catch (err) {
      replace(listEl, h('p', {class: 'error'}, `Queue failed to load: ${err.message}`));
    }
  }

  function itemEl(it, i) {
    const current = i === state.cursor;
    const checkbox = h('input', {type: 'checkbox', 'aria-label': 'Select item', checked: state.selected.has(it.id),
      onchange: (e) => { if (e.target.checked) state.selected.add(it.id); else state.selected.delete(it.id); updateCount(); }});
    const claimActive = it.claimed_by && it.claim_until && Date.parse(it.claim_until) > Date.now();
    const claimText = !claimActive ? null : it.claimed_by === ctx.user.id ? 'claimed by you' : `claimed by ${state.names[it.claimed_by] || it.claimed_by}`;
    const detail = state.details.get(it.id);
    const around = (detail?.context || []).filter((m) => m.seq !== it.message_seq);
    const before = around.filter((m) => m.seq < it.message_seq);
    const after = around.filter((m) => m.seq > it.message_seq);
    const ctxLine = (m) => h('div', {}, `${m.role}: ${m.text}`);
    return h('div', {class: 'card queue-item', role: 'listitem', 'data-id': it.id, 'aria-current': String(current), tabindex: current ? 0 : -1,
      onclick: () => { state.cursor = i; render(false); loadDetail(it); }},
      checkbox,
      h('div', {},
        h('div', {class: 'row'},
          h('span', {class: ['pill', severityClass(it.severity)]}, `severity ${it.severity}`),
          (it.categories || []).map((c) => h('span', {class: 'pill'}, c)),
          h('span', {class: 'pill'}, it.action || ''),
          it.status !== 'open' ? h('span', {class: 'muted'}, `${it.status}${it.decided_by ? ` by ${state.names[it.decided_by] || it.decided_by}` : ''}${it.decision_reason ? ` — ${it.decision_reason}` : ''}`) : null,
          claimText ? h('span', {class: 'warn claim'}, claimText) : null,
          h('span', {class: 'spacer'}), h('span', {class: 'muted', title: fmtDateTime(it.message_at)}, fmtRelative(it.message_at))),
        before.length ? h('div', {class: 'context-msgs'}, before.map(ctxLine)) : null,
        h('p', {class: 'text'}, highlight(it.text, it.spans, h)),
        after.length ? h('div', {class: 'context-msgs'}, after.map(ctxLine)) : null,
        h('div', {class: 'row sources'}, h('span', {class: 'muted'}, 'Decided by'),
          decidingSources(it).map((src) => h('span', {class: 'pill source', title: src}, sourceName(src)))),
        it.status === 'open' ? teachRow(it) : null,
        h('div', {class: 'muted'}, `${it.actor_role || 'visitor'} ${it.visitor_id || '?'} · site ${it.site_id || '?'}`,
          it.conversation_id ? [' · ', h('a', {href: `/app/conversations/${encodeURIComponent(it.conversation_id)}`}, 'conversation')] : null)),
      h('div', {class: 'row', style: {flexDirection: 'column', alignItems: 'stretch'}},
        h('button', {type: 'button', class: 'small', 'data-action': 'claim', onclick: (e) => { e.stopPropagation(); claim(it); }}, 'Claim (c)'),
        h('button', {type: 'button', class: 'small', 'data-action': 'approve', onclick: (e) => { e.stopPropagation(); decide(it, 'approve'); }}, 'Approve (a)'),
        h('button', {type: 'button', class: 'small danger', 'data-action': 'remove', onclick: (e) => { e.stopPropagation(); decide(it, 'remove'); }}, 'Remove (r)'),
        h('button', {type: 'button', class: 'small', 'data-action': 'ban', onclick: (e) => { e.stopPropagation(); ban(it); }}, 'Ban (b)'),
        h('button', {type: 'button', class: 'small', 'data-action': 'reviewed', onclick: (e) => { e.stopPropagation(); decide(it, 'reviewed'); }}, 'Reviewed (m)')));
  }

  // teachRow offers, for every term or domain the item matched, one click
  // to put it on the site's allow list or block list.
  function teachRow(it) {
    const items = teachable(it);
    if (items.length === 0) return null;
    return h('div', {class: 'teach'}, items.map((t) => h('div', {class: 'row', 'data-match': t.match},
      h('span', {class: 'muted'}, `${t.kind === 'domain' ? 'Domain' : 'Term'} `, h('code', {}, t.match), ` (${t.category})`),
      h('button', {type: 'button', class: 'small', 'data-action': 'allow-list', title: `Never flag ${t.match} on this site again`,
        onclick: (e) => { e.stopPropagation(); teach(it, 'allow', t); }}, 'Add to allow list'),
      h('button', {type: 'button', class: 'small', 'data-action': 'block-list', title: `Always block ${t.match} on this site`,
        onclick: (e) => { e.stopPropagation(); teach(it, 'block', t); }}, 'Add to block list'))));
  }

  async function teach(it, list, t) {
    try {
      const r = await moderationAPI.teachList(it.id, list, t.match, `from review item ${it.id}`);
      const moved = r.removed_from ? ` (taken off the ${r.removed_from} list)` : '';
      toast(`${t.match} is on the ${r.list} list of ${(siteNames && siteNames[r.site_id]) || `site ${r.site_id}`}${moved}`, 'ok');
    } catch (err) { toast(err.message, 'error'); }
  }

  function render(focus = true) {
    // A list role only while there are items: an empty list role has no listitem.
    if (state.items.length === 0) listEl.removeAttribute('role');
    else listEl.setAttribute('role', 'list');
    replace(listEl, state.items.length === 0 ? h('p', {class: 'empty'}, 'Nothing to review. 🎉') : state.items.map(itemEl));
    updateCount();
    const cur = listEl.querySelector('[aria-current="true"]');
    if (cur && focus && listEl.contains(document.activeElement) === false && document.activeElement === document.body) cur.focus();
    if (cur) cur.scrollIntoView({block: 'nearest'});
    const it = state.items[state.cursor];
    if (it) loadDetail(it);
  }

  // loadDetail fetches the conversation around an item once.
  async function loadDetail(it) {
    if (state.details.has(it.id)) return;
    state.details.set(it.id, null);
    try {
      state.details.set(it.id, await moderationAPI.item(it.id));
      render(false);
    } catch (err) {
      state.details.delete(it.id);
      toast(`Context of the item failed to load: ${err.message}`, 'error');
    }
  }

  function updateCount() { bulk.querySelector('#selected-count').textContent = `${state.selected.size} selected`; }

  async function claim(it) {
    try {
      await moderationAPI.claim(it.id);
      toast('Claimed', 'ok');
      await load();
    } catch (err) { toast(err.status === 409 ? `Already claimed: ${err.message}` : err.message, 'error'); }
  }

  // Every decision carries a reason (the audit log shows it); the dialog
  // proposes one so Enter/click confirms quickly.
  const DEFAULT_REASON = {
    approve: () => 'No violation',
    remove: (it) => `Breaks the site's rules${(it?.categories || []).length ? ` (${it.categories.join(', ')})` : ''}`,
    reviewed: () => 'Reviewed, no action needed',
  };
  const LABEL = {approve: 'Approve', remove: 'Remove', reviewed: 'Mark reviewed'};

  async function askReason(decision, it, count = 1) {
    const r = await formDialog({
      title: `${LABEL[decision]}${count > 1 ? ` ${count} items` : ''}`, submit: LABEL[decision], danger: decision === 'remove',
      fields: [{name: 'reason', label: 'Reason (kept in the audit log)', type: 'textarea', value: DEFAULT_REASON[decision](it), required: true, maxlength: 500}],
    });
    return r && r.reason.trim();
  }

  async function decide(it, decision, extra = null) {
    const body = extra || {reason: await askReason(decision, it)};
    if (!body.reason) return;
    try {
      await moderationAPI.decide(it.id, decision, body);
      toast(`${LABEL[decision] || 'Ban'}: done`, 'ok');
      state.selected.delete(it.id);
      await load();
      loadPrecision();
    } catch (err) { toast(err.message, 'error'); }
  }

  async function ban(it) {
    const r = await formDialog({title: 'Ban visitor', message: `Ban visitor ${it.visitor_id || ''} from chatting on this site.`, submit: 'Ban', danger: true, fields: [
      {name: 'duration', label: 'Duration', type: 'select', options: BAN_DURATIONS.map(([v, l]) => ({value: v, label: l})), value: '24h'},
      {name: 'reason', label: 'Reason', type: 'textarea', required: true, value: DEFAULT_REASON.remove(it)},
    ]});
    if (!r) return;
    decide(it, 'ban', {duration: r.duration, reason: r.reason});
  }

  async function bulkDecide(decision) {
    const ids = [...state.selected];
    if (ids.length === 0) { toast('Select items first (x or the checkboxes).', 'error'); return; }
    const reason = await askReason(decision, null, ids.length);
    if (!reason) return;
    const results = await Promise.allSettled(ids.map((id) => moderationAPI.decide(id, decision, {reason})));
    const failed = results.filter((x) => x.status === 'rejected');
    state.selected.clear();
    toast(failed.length ? `${ids.length - failed.length} done, ${failed.length} failed: ${failed[0].reason.message}` : `${ids.length} items: ${LABEL[decision]}`, failed.length ? 'error' : 'ok');
    await load();
  }

  const onKey = (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || document.querySelector('dialog[open]')) return;
    if (e.target.closest && e.target.closest('input, textarea, select, [contenteditable]')) return;
    const it = state.items[state.cursor];
    const actions = {
      j: () => { state.cursor = Math.min(state.items.length - 1, state.cursor + 1); render(); listEl.querySelector('[aria-current="true"]')?.focus(); },
      k: () => { state.cursor = Math.max(0, state.cursor - 1); render(); listEl.querySelector('[aria-current="true"]')?.focus(); },
      c: () => it && claim(it), a: () => it && decide(it, 'approve'), r: () => it && decide(it, 'remove'),
      b: () => it && ban(it), m: () => it && decide(it, 'reviewed'),
      x: () => { if (!it) return; if (state.selected.has(it.id)) state.selected.delete(it.id); else state.selected.add(it.id); render(); },
    };
    const fn = actions[e.key];
    if (fn) { e.preventDefault(); fn(); }
  };
  document.addEventListener('keydown', onKey);
  statusSel.addEventListener('change', () => { state.status = statusSel.value; ctx.setQuery({status: state.status}); load(); });
  catSel.addEventListener('change', () => { state.category = catSel.value; load(); });

  await load();
  loadPrecision();
  const timer = setInterval(() => { if (!document.querySelector('dialog[open]')) load(); }, 10000);
  return () => { document.removeEventListener('keydown', onKey); clearInterval(timer); };
}

// Moderators' review queue: offending span highlighted with the
// conversation around it, severity and category, claim, approve, remove,
// ban with a duration, mark reviewed; keyboard shortcuts (j/k move, c claim,
// a approve, r remove, b ban, m mark reviewed, x select) and bulk actions.
import {h, replace, toast, formDialog, fmtDateTime, fmtRelative} from '../dom.js';
import {moderationAPI, highlight} from '../moderation-api.js';

const BAN_DURATIONS = [['60', '1 hour'], ['1440', '1 day'], ['10080', '7 days'], ['43200', '30 days'], ['525600', '1 year']];

function severityClass(s) { return s >= 3 ? 'sev-high' : s >= 2 ? 'sev-mid' : ''; }

export async function mount(root, ctx) {
  const state = {items: [], cursor: 0, selected: new Set(), status: ctx.params.get('status') || 'open', category: ctx.params.get('category') || '', counts: {}};
  const statusSel = h('select', {id: 'queue-status'}, [['open', 'To review'], ['claimed', 'Claimed'], ['decided', 'Decided'], ['all', 'All']]
    .map(([v, l]) => h('option', {value: v, selected: v === state.status}, l)));
  const catSel = h('select', {id: 'queue-category'}, h('option', {value: ''}, 'All categories'));
  const bulk = h('div', {class: 'row', id: 'bulk-actions'},
    h('span', {class: 'muted', id: 'selected-count'}, '0 selected'),
    h('button', {type: 'button', class: 'small', onclick: () => bulkDecide('approve')}, 'Approve selected'),
    h('button', {type: 'button', class: 'small', onclick: () => bulkDecide('remove')}, 'Remove selected'),
    h('button', {type: 'button', class: 'small', onclick: () => bulkDecide('reviewed')}, 'Mark selected reviewed'));
  const listEl = h('div', {class: 'queue', id: 'queue', role: 'list', 'aria-label': 'Review queue'});
  replace(root,
    h('h1', {id: 'page-title'}, 'Review queue'),
    h('div', {class: 'toolbar'},
      h('div', {class: 'group'}, h('label', {for: 'queue-status'}, 'Show'), statusSel),
      h('div', {class: 'group'}, h('label', {for: 'queue-category'}, 'Category'), catSel),
      h('span', {class: 'spacer'}), bulk),
    h('p', {class: 'muted'}, 'Keys: ', ...[['j', 'k', 'next/previous'], ['c', 'claim'], ['a', 'approve'], ['r', 'remove'], ['b', 'ban'], ['m', 'mark reviewed'], ['x', 'select']]
      .flatMap((k) => [...k.slice(0, -1).map((x) => h('span', {class: 'kbd'}, x)), ` ${k[k.length - 1]}  `])),
    listEl);

  async function load() {
    try {
      const r = await moderationAPI.items({status: state.status === 'all' ? '' : state.status, category: state.category});
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
    const claimedByOther = it.claimed_by && it.claimed_by !== ctx.user.id && it.claimed_by_name;
    return h('article', {class: 'card queue-item', role: 'listitem', 'data-id': it.id, 'aria-current': String(current), tabindex: current ? 0 : -1,
      onclick: () => { state.cursor = i; render(false); }},
      checkbox,
      h('div', {},
        h('div', {class: 'row'},
          h('span', {class: ['pill', severityClass(it.severity)]}, `severity ${it.severity}`),
          (it.categories || []).map((c) => h('span', {class: 'pill'}, c)),
          h('span', {class: 'pill'}, it.action || ''),
          it.status ? h('span', {class: 'muted'}, it.status) : null,
          claimedByOther ? h('span', {class: 'warn'}, `claimed by ${it.claimed_by_name}`) : null,
          h('span', {class: 'spacer'}), h('span', {class: 'muted', title: fmtDateTime(it.created_at)}, fmtRelative(it.created_at))),
        (it.context_before || []).length ? h('div', {class: 'context-msgs'}, it.context_before.map((m) => h('div', {}, `${m.role || m.author_role || ''}: ${m.text}`))) : null,
        h('p', {class: 'text'}, highlight(it.text, it.spans, h)),
        (it.context_after || []).length ? h('div', {class: 'context-msgs'}, it.context_after.map((m) => h('div', {}, `${m.role || m.author_role || ''}: ${m.text}`))) : null,
        h('div', {class: 'muted'}, `visitor ${it.visitor_id || '?'} · site ${it.site_id || '?'}`,
          it.conversation_id ? [' · ', h('a', {href: `/app/conversations/${encodeURIComponent(it.conversation_id)}`}, 'conversation')] : null)),
      h('div', {class: 'row', style: {flexDirection: 'column', alignItems: 'stretch'}},
        h('button', {type: 'button', class: 'small', 'data-action': 'claim', onclick: (e) => { e.stopPropagation(); claim(it); }}, 'Claim (c)'),
        h('button', {type: 'button', class: 'small', 'data-action': 'approve', onclick: (e) => { e.stopPropagation(); decide(it, 'approve'); }}, 'Approve (a)'),
        h('button', {type: 'button', class: 'small danger', 'data-action': 'remove', onclick: (e) => { e.stopPropagation(); decide(it, 'remove'); }}, 'Remove (r)'),
        h('button', {type: 'button', class: 'small', 'data-action': 'ban', onclick: (e) => { e.stopPropagation(); ban(it); }}, 'Ban (b)'),
        h('button', {type: 'button', class: 'small', 'data-action': 'reviewed', onclick: (e) => { e.stopPropagation(); decide(it, 'reviewed'); }}, 'Reviewed (m)')));
  }

  function render(focus = true) {
    replace(listEl, state.items.length === 0 ? h('p', {class: 'empty'}, 'Nothing to review. 🎉') : state.items.map(itemEl));
    updateCount();
    const cur = listEl.querySelector('[aria-current="true"]');
    if (cur && focus && listEl.contains(document.activeElement) === false && document.activeElement === document.body) cur.focus();
    if (cur) cur.scrollIntoView({block: 'nearest'});
  }

  function updateCount() { bulk.querySelector('#selected-count').textContent = `${state.selected.size} selected`; }

  async function claim(it) {
    try {
      await moderationAPI.claim(it.id);
      toast('Claimed', 'ok');
      await load();
    } catch (err) { toast(err.status === 409 ? `Already claimed: ${err.message}` : err.message, 'error'); }
  }

  async function decide(it, decision, extra = {}) {
    try {
      await moderationAPI.decide(it.id, {decision, ...extra});
      toast(`${decision}: done`, 'ok');
      state.selected.delete(it.id);
      await load();
    } catch (err) { toast(err.message, 'error'); }
  }

  async function ban(it) {
    const r = await formDialog({title: 'Ban visitor', message: `Ban visitor ${it.visitor_id || ''} from chatting.`, submit: 'Ban', danger: true, fields: [
      {name: 'minutes', label: 'Duration', type: 'select', options: BAN_DURATIONS.map(([v, l]) => ({value: v, label: l})), value: '1440'},
      {name: 'reason', label: 'Reason', type: 'textarea', required: true},
    ]});
    if (!r) return;
    decide(it, 'ban', {duration_minutes: Number(r.minutes), reason: r.reason});
  }

  async function bulkDecide(decision) {
    const ids = [...state.selected];
    if (ids.length === 0) { toast('Select items first (x or the checkboxes).', 'error'); return; }
    const results = await Promise.allSettled(ids.map((id) => moderationAPI.decide(id, {decision})));
    const failed = results.filter((x) => x.status === 'rejected');
    state.selected.clear();
    toast(failed.length ? `${ids.length - failed.length} done, ${failed.length} failed: ${failed[0].reason.message}` : `${ids.length} items: ${decision}`, failed.length ? 'error' : 'ok');
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
  const timer = setInterval(() => { if (!document.querySelector('dialog[open]')) load(); }, 10000);
  return () => { document.removeEventListener('keydown', onKey); clearInterval(timer); };
}

// Admin: teams that conversations can be routed to and reported by.
import {h, replace, toast, confirmDialog, formDialog} from '../dom.js';
import {get, post, patch, del} from '../api.js';

export async function mount(root) {
  const list = h('div', {id: 'teams-list'});
  const err = h('p', {class: 'error', role: 'alert', hidden: true});
  const form = h('form', {class: 'card row', id: 'new-team-form', 'aria-label': 'New team'},
    h('label', {for: 'team-name', class: 'inline-label'}, 'New team'),
    h('input', {id: 'team-name', name: 'name', required: true, maxlength: 100, placeholder: 'e.g. Billing'}),
    h('button', {type: 'submit', class: 'primary'}, 'Create team'), err);
  replace(root, h('h1', {id: 'page-title'}, 'Teams'),
    h('p', {class: 'muted'}, 'Agents belong to at most one team; conversations can be transferred to a team and reports split by team.'),
    form, h('div', {style: {height: '12px'}}), list);

  async function load() {
    const {teams} = await get('/api/admin/teams');
    replace(list, teams.length === 0 ? h('p', {class: 'empty'}, 'No teams yet.') : h('div', {class: 'table-wrap'}, h('table', {class: 'data', id: 'teams-table'},
      h('thead', {}, h('tr', {}, ['Team', 'Members', ''].map((l) => h('th', {scope: 'col'}, l)))),
      h('tbody', {}, teams.map((t) => h('tr', {},
        h('td', {}, t.name), h('td', {class: 'num'}, String(t.members)),
        h('td', {}, h('div', {class: 'row'},
          h('button', {class: 'small', type: 'button', 'aria-label': `Rename ${t.name}`, onclick: () => rename(t)}, 'Rename'),
          h('button', {class: 'small', type: 'button', 'aria-label': `Delete ${t.name}`, onclick: () => remove(t)}, 'Delete')))))))));
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.hidden = true;
    try {
      const t = await post('/api/admin/teams', {name: form.elements.namedItem('name').value.trim()});
      toast(`Created team ${t.name}`, 'ok');
      form.reset();
      await load();
    } catch (ex) {
      err.textContent = ex.message;
      err.hidden = false;
    }
  });

  async function rename(t) {
    const r = await formDialog({title: `Rename ${t.name}`, fields: [{name: 'name', label: 'Name', value: t.name, required: true}], submit: 'Rename'});
    if (!r) return;
    try {
      await patch(`/api/admin/teams/${encodeURIComponent(t.id)}`, {name: r.name.trim()});
      await load();
    } catch (ex) { toast(ex.message, 'error'); }
  }

  async function remove(t) {
    if (!(await confirmDialog('Delete team', `Delete ${t.name}? Its ${t.members} members stay, without a team.`, 'Delete', true))) return;
    try {
      await del(`/api/admin/teams/${encodeURIComponent(t.id)}`);
      await load();
    } catch (ex) { toast(ex.message, 'error'); }
  }

  await load();
}

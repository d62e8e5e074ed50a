// Admin: staff accounts and their roles.
import {h, replace, toast, confirmDialog, fmtDateTime} from '../dom.js';
import {get, post, patch, del} from '../api.js';

const ROLES = [
  ['agent', 'Agent — answers chats'],
  ['supervisor', 'Supervisor — analytics and reports'],
  ['moderator', 'Moderator — review queue and policy'],
  ['admin', 'Admin — sites, staff and teams (implies all)'],
];

// siteField lets an admin choose the sites a non-admin works on: one box
// per site when the chat service lists them, otherwise site ids typed in.
function siteField(idp, sites, chosen) {
  if (sites) {
    return h('fieldset', {id: `${idp}-sites`}, h('legend', {}, 'Sites (agents, supervisors and moderators see only these)'),
      sites.length === 0 ? h('p', {class: 'muted'}, 'No sites yet.') :
        h('div', {class: 'row'}, sites.map((s) => h('label', {class: 'inline-label'},
          h('input', {type: 'checkbox', name: 'sites', value: s.id, checked: chosen.includes(s.id)}), s.name))));
  }
  return h('div', {}, h('label', {for: `${idp}-sites`}, 'Site ids, comma separated (agents, supervisors and moderators see only these)'),
    h('input', {id: `${idp}-sites`, name: 'site_ids', value: chosen.join(', '), autocomplete: 'off'}));
}

function chosenSites(form) {
  const typed = form.elements.namedItem('site_ids');
  if (typed) return typed.value.split(',').map((s) => s.trim()).filter(Boolean);
  return [...form.querySelectorAll('input[name=sites]:checked')].map((c) => c.value);
}

function userForm({user, teams, sites, onSubmit, onCancel}) {
  const editing = !!user;
  const idp = editing ? 'edit' : 'new';
  const roleBoxes = ROLES.map(([r, label]) => h('label', {class: 'inline-label'},
    h('input', {type: 'checkbox', name: 'roles', value: r, checked: editing && user.roles.includes(r)}), label));
  const err = h('p', {class: 'error', role: 'alert', hidden: true});
  const form = h('form', {class: 'card', 'aria-label': editing ? `Edit ${user.name}` : 'New staff member', id: `${idp}-user-form`},
    h('h2', {}, editing ? `Edit ${user.name}` : 'Add a staff member'),
    h('div', {class: 'form-grid'},
      h('div', {}, h('label', {for: `${idp}-email`}, 'Email'),
        h('input', {id: `${idp}-email`, name: 'email', type: 'email', required: !editing, disabled: editing, value: editing ? user.email : '', autocomplete: 'off'})),
      h('div', {}, h('label', {for: `${idp}-name`}, 'Name'),
        h('input', {id: `${idp}-name`, name: 'name', required: true, maxlength: 100, value: editing ? user.name : ''})),
      h('div', {}, h('label', {for: `${idp}-password`}, editing ? 'New password (leave empty to keep)' : 'Password (8–72 characters)'),
        h('input', {id: `${idp}-password`, name: 'password', type: 'password', minlength: 8, maxlength: 72, required: !editing, autocomplete: 'new-password'})),
      h('div', {}, h('label', {for: `${idp}-team`}, 'Team'),
        h('select', {id: `${idp}-team`, name: 'team_id'}, h('option', {value: ''}, 'No team'),
          teams.map((t) => h('option', {value: t.id, selected: editing && user.team_id === t.id}, t.name))))),
    h('fieldset', {}, h('legend', {}, 'Roles'), h('div', {class: 'row'}, roleBoxes)),
    siteField(idp, sites, editing ? user.sites || [] : []),
    err,
    h('div', {class: 'row'},
      h('button', {type: 'submit', class: 'primary'}, editing ? 'Save changes' : 'Create user'),
      onCancel ? h('button', {type: 'button', onclick: onCancel}, 'Cancel') : null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.hidden = true;
    if (!form.reportValidity()) return;
    const roles = [...form.querySelectorAll('input[name=roles]:checked')].map((c) => c.value);
    if (roles.length === 0) {
      err.textContent = 'Choose at least one role.';
      err.hidden = false;
      return;
    }
    const body = {name: form.elements.namedItem('name').value.trim(), roles, team_id: form.team_id.value, sites: chosenSites(form)};
    if (!editing) body.email = form.email.value.trim();
    if (form.password.value) body.password = form.password.value;
    try {
      await onSubmit(body);
      form.reset();
    } catch (ex) {
      err.textContent = ex.message;
      err.hidden = false;
    }
  });
  return form;
}

export async function mount(root, ctx) {
  const list = h('div', {id: 'users-list'});
  const editor = h('div', {id: 'user-editor'});
  replace(root, h('h1', {id: 'page-title'}, 'Staff'), h('p', {class: 'muted'}, 'Staff accounts and what each person may do. Admins hold every role.'), list, editor);
  let teams = [];
  let sites = null; // null: the chat service did not list them

  async function load() {
    const [{users}, teamRes, siteRes] = await Promise.all([get('/api/admin/users'), get('/api/admin/teams'),
      get('/api/chat/sites').catch(() => null)]);
    teams = teamRes.teams;
    sites = siteRes ? siteRes.sites : null;
    const teamName = Object.fromEntries(teams.map((t) => [t.id, t.name]));
    const siteName = Object.fromEntries((sites || []).map((s) => [s.id, s.name]));
    const siteCell = (u) => u.roles.includes('admin') ? 'every site' : (u.sites || []).map((id) => siteName[id] || id).join(', ') || 'none';
    replace(list, users.length === 0 ? h('p', {class: 'empty'}, 'No staff yet.') : h('div', {class: 'table-wrap'}, h('table', {class: 'data', id: 'users-table'},
      h('thead', {}, h('tr', {}, ['Name', 'Email', 'Roles', 'Team', 'Created', 'Sites', ''].map((l) => h('th', {scope: 'col'}, l || h('span', {class: 'sr-only'}, 'Actions'))))),
      h('tbody', {}, users.map((u) => h('tr', {'data-email': u.email},
        h('td', {}, u.name), h('td', {}, u.email), h('td', {}, u.roles.join(', ')),
        h('td', {}, teamName[u.team_id] || ''), h('td', {}, fmtDateTime(u.created_at)), h('td', {}, siteCell(u)),
        h('td', {}, h('div', {class: 'row'},
          h('button', {class: 'small', type: 'button', 'aria-label': `Edit ${u.name}`, onclick: () => edit(u)}, 'Edit'),
          u.id === ctx.user.id ? null : h('button', {class: 'small', type: 'button', 'aria-label': `Delete ${u.name}`, onclick: () => remove(u)}, 'Delete')))))))));
    showNew();
  }

  function showNew() {
    replace(editor, userForm({teams, sites, onSubmit: async (body) => {
      const u = await post('/api/admin/users', body);
      toast(`Created ${u.name}`, 'ok');
      await load();
    }}));
  }

  function edit(u) {
    replace(editor, userForm({user: u, teams, sites, onCancel: showNew, onSubmit: async (body) => {
      await patch(`/api/admin/users/${encodeURIComponent(u.id)}`, body);
      toast(`Saved ${body.name}`, 'ok');
      await load();
    }}));
    editor.querySelector('input[name=name]').focus();
  }

  async function remove(u) {
    if (!(await confirmDialog('Delete staff member', `Delete ${u.name} (${u.email})? Their sessions end at once.`, 'Delete', true))) return;
    try {
      await del(`/api/admin/users/${encodeURIComponent(u.id)}`);
      toast(`Deleted ${u.name}`, 'ok');
      await load();
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  await load();
}

// Supervisors: canned replies agents insert with /shortcut in the console
// (chatsvc's GET/POST /api/chat/canned, PUT/DELETE /api/chat/canned/{id}).
import {h, replace, toast, confirmDialog, formDialog} from '../dom.js';
import {get, post, put, del} from '../api.js';

const SHORTCUT = '[a-z0-9_\\-]{1,32}';

export async function mount(root, ctx) {
  const isAdmin = (ctx?.user?.roles || []).includes('admin');
  const list = h('div', {id: 'canned-list'});
  const err = h('p', {class: 'error', role: 'alert', hidden: true});
  // Replies for every site are an admin's; others choose one of their sites.
  const siteSel = h('select', {id: 'canned-site', name: 'site_id'}, isAdmin ? h('option', {value: ''}, 'Every site') : null);
  const form = h('form', {class: 'card', id: 'new-canned-form', 'aria-label': 'New canned reply'},
    h('h2', {style: {marginTop: 0}}, 'Add a canned reply'),
    h('div', {class: 'form-grid'},
      h('div', {class: 'field'}, h('label', {for: 'canned-shortcut'}, 'Shortcut (typed as /shortcut)'),
        h('input', {id: 'canned-shortcut', name: 'shortcut', required: true, pattern: SHORTCUT, maxlength: 32, placeholder: 'refund'})),
      h('div', {class: 'field'}, h('label', {for: 'canned-site'}, 'Site'), siteSel)),
    h('div', {class: 'field'}, h('label', {for: 'canned-text'}, 'Text'),
      h('textarea', {id: 'canned-text', name: 'text', required: true, rows: 3, maxlength: 4000})),
    err, h('button', {type: 'submit', class: 'primary'}, 'Add reply'));
  replace(root, h('h1', {id: 'page-title'}, 'Canned replies'),
    h('p', {class: 'muted'}, 'Agents type / and the shortcut in the console to insert one of these.'),
    form, h('div', {style: {height: '12px'}}), list);

  const siteNames = {};
  try {
    const {sites} = await get('/api/chat/my-sites');
    for (const s of sites || []) {
      siteNames[s.id] = s.name;
      siteSel.append(h('option', {value: s.id}, s.name));
    }
  } catch (ex) {
    err.textContent = `Your sites failed to load: ${ex.message}`;
    err.hidden = false;
  }

  async function load() {
    let canned;
    try {
      ({canned} = await get('/api/chat/canned'));
    } catch (ex) {
      replace(list, h('p', {class: 'error'}, `Canned replies failed to load: ${ex.message}`));
      return;
    }
    replace(list, canned.length === 0 ? h('p', {class: 'empty'}, 'No canned replies yet.') : h('div', {class: 'table-wrap'}, h('table', {class: 'data', id: 'canned-table'},
      h('thead', {}, h('tr', {}, ['Shortcut', 'Site', 'Text', ''].map((l) => h('th', {scope: 'col'}, l)))),
      h('tbody', {}, canned.map((c) => h('tr', {'data-shortcut': c.shortcut},
        h('td', {}, h('code', {}, '/' + c.shortcut)),
        h('td', {}, c.site_id ? (siteNames[c.site_id] || c.site_id) : 'Every site'),
        h('td', {class: 'wrap'}, c.text),
        h('td', {}, h('div', {class: 'row'},
          h('button', {class: 'small', type: 'button', 'aria-label': `Edit /${c.shortcut}`, onclick: () => edit(c)}, 'Edit'),
          h('button', {class: 'small', type: 'button', 'aria-label': `Delete /${c.shortcut}`, onclick: () => remove(c)}, 'Delete')))))))));
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.hidden = true;
    const el = form.elements;
    try {
      const c = await post('/api/chat/canned', {shortcut: el.namedItem('shortcut').value.trim(), site_id: siteSel.value, text: el.namedItem('text').value});
      toast(`Added /${c.shortcut}`, 'ok');
      form.reset();
      await load();
    } catch (ex) {
      err.textContent = ex.message;
      err.hidden = false;
    }
  });

  async function edit(c) {
    const r = await formDialog({title: `Edit /${c.shortcut}`, submit: 'Save', fields: [
      {name: 'shortcut', label: 'Shortcut', value: c.shortcut, required: true},
      {name: 'text', label: 'Text', type: 'textarea', value: c.text, required: true, maxlength: 4000},
    ]});
    if (!r) return;
    try {
      await put(`/api/chat/canned/${encodeURIComponent(c.id)}`, {shortcut: r.shortcut.trim(), site_id: c.site_id, text: r.text});
      await load();
    } catch (ex) { toast(ex.message, 'error'); }
  }

  async function remove(c) {
    if (!(await confirmDialog('Delete canned reply', `Delete /${c.shortcut}?`, 'Delete', true))) return;
    try {
      await del(`/api/chat/canned/${encodeURIComponent(c.id)}`);
      await load();
    } catch (ex) { toast(ex.message, 'error'); }
  }

  await load();
}

// Admin: API tokens for integrations (docs/integrations.md). A token's
// secret is shown once, right after it is created; the list shows each
// token's scopes, sites, last use and its audited calls.
import {h, replace, toast, confirmDialog, fmtDateTime, table} from '../dom.js';
import {get, post, del} from '../api.js';

const SCOPES = [
  ['conversations:read', 'Read conversations and messages'],
  ['messages:write', 'Send messages as an agent or as the bot'],
  ['analytics:read', 'Read reports and the live overview'],
  ['sites:manage', 'Create, change and delete sites'],
];

export async function mount(root) {
  const list = h('div', {id: 'tokens-list'});
  const uses = h('div', {id: 'token-uses'});
  const err = h('p', {class: 'error', role: 'alert', hidden: true});
  const secretBox = h('div', {class: 'card', id: 'token-secret', hidden: true});
  let sites = [];
  const siteSelect = h('select', {id: 'token-sites', name: 'sites', multiple: true, size: 3, 'aria-describedby': 'token-sites-help'});
  const form = h('form', {class: 'card', id: 'new-token-form', 'aria-label': 'New API token'},
    h('h2', {}, 'New token'),
    h('div', {class: 'field'}, h('label', {for: 'token-name'}, 'Name'),
      h('input', {id: 'token-name', name: 'name', required: true, maxlength: 100, placeholder: 'e.g. CRM sync'})),
    h('fieldset', {class: 'field'}, h('legend', {}, 'Scopes'),
      SCOPES.map(([value, label]) => h('label', {class: 'inline-label'}, h('input', {type: 'checkbox', name: 'scope', value}), ` ${label} `, h('code', {}, value)))),
    h('div', {class: 'field'}, h('label', {for: 'token-sites'}, 'Limit to sites'), siteSelect,
      h('p', {class: 'muted', id: 'token-sites-help'}, 'Select none for every site.')),
    h('button', {type: 'submit', class: 'primary', id: 'create-token'}, 'Create token'), err);
  replace(root, h('h1', {id: 'page-title'}, 'API tokens'),
    h('p', {class: 'muted'}, 'Integrations call the REST API with Authorization: Bearer TOKEN. Every call is audited; revoke a token to stop it at once.'),
    secretBox, form, h('h2', {}, 'Tokens'), list, uses);

  async function load() {
    const {tokens} = await get('/api/admin/tokens');
    const siteName = (id) => sites.find((s) => s.id === id)?.name || id;
    replace(list, table([
      {key: 'name', label: 'Name'},
      {key: 'scopes', label: 'Scopes', format: (v) => (v || []).join(', ')},
      {key: 'sites', label: 'Sites', format: (v) => (v && v.length ? v.map(siteName).join(', ') : 'All')},
      {key: 'hint', label: 'Starts with', render: (t) => h('code', {}, t.hint + '…')},
      {key: 'last_used_at', label: 'Last used', format: (v) => (v ? fmtDateTime(v) : 'Never')},
      {key: 'revoked_at', label: 'State', format: (v) => (v ? `Revoked ${fmtDateTime(v)}` : 'Active')},
      {key: 'id', label: '', render: (t) => h('div', {class: 'row'},
        h('button', {class: 'small', type: 'button', 'aria-label': `Calls of ${t.name}`, onclick: () => showUses(t)}, 'Calls'),
        t.revoked_at ? null : h('button', {class: 'small danger', type: 'button', 'aria-label': `Revoke ${t.name}`, onclick: () => revoke(t)}, 'Revoke'))},
    ], tokens, {empty: 'No tokens yet.'}));
  }

  async function showUses(t) {
    const r = await get(`/api/admin/tokens/${encodeURIComponent(t.id)}/uses`);
    replace(uses, h('h2', {}, `Calls of ${t.name}`), table([
      {key: 'at', label: 'When', format: (v) => fmtDateTime(v)},
      {key: 'method', label: 'Method'},
      {key: 'path', label: 'Path'},
      {key: 'status', label: 'Status', numeric: true},
      {key: 'ip', label: 'From'},
    ], r.uses, {empty: 'Not used yet.'}));
  }

  async function revoke(t) {
    if (!(await confirmDialog('Revoke token', `Revoke ${t.name}? Integrations using it stop working at once.`, 'Revoke', true))) return;
    try {
      await del(`/api/admin/tokens/${encodeURIComponent(t.id)}`);
      toast(`Revoked ${t.name}`, 'ok');
      await load();
    } catch (ex) { toast(ex.message, 'error'); }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.hidden = true;
    const scopes = [...form.querySelectorAll('input[name=scope]:checked')].map((i) => i.value);
    const picked = [...siteSelect.selectedOptions].map((o) => o.value);
    try {
      const t = await post('/api/admin/tokens', {name: form.elements.namedItem('name').value.trim(), scopes, sites: picked});
      const secret = h('input', {id: 'new-token-secret', readonly: true, value: t.secret, 'aria-label': 'Token secret', size: 60});
      replace(secretBox, h('h2', {}, `Token ${t.name} created`),
        h('p', {}, 'Copy it now: it is shown this once and stored only as a hash.'),
        h('div', {class: 'row'}, secret, h('button', {type: 'button', class: 'small', onclick: () => navigator.clipboard?.writeText(t.secret).then(() => toast('Copied', 'ok'))}, 'Copy')));
      secretBox.hidden = false;
      secret.select();
      form.reset();
      await load();
    } catch (ex) {
      err.textContent = ex.message;
      err.hidden = false;
    }
  });

  try { sites = (await get('/api/chat/sites')).sites || []; } catch { sites = []; }
  replace(siteSelect, sites.map((s) => h('option', {value: s.id}, s.name)));
  await load();
}

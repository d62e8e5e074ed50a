// Admin: outgoing event webhooks (docs/integrations.md). An endpoint is a
// URL subscribed to event types of one site; its secret (shown when
// created or rotated) signs every delivery. Dead deliveries are listed
// with their last error and can be sent again.
import {h, replace, toast, confirmDialog, fmtDateTime, table} from '../dom.js';
import {get, post, del, put} from '../api.js';

const EVENT_TYPES = ['conversation.started', 'conversation.queued', 'conversation.assigned', 'conversation.transferred',
  'conversation.resolved', 'conversation.reopened', 'message.sent', 'message.read', 'visitor.left', 'csat.submitted',
  'moderation.verdict', 'moderation.decision', 'agent.presence', 'site.updated'];

export async function mount(root) {
  const list = h('div', {id: 'webhooks-list'});
  const detail = h('div', {id: 'webhook-detail'});
  const err = h('p', {class: 'error', role: 'alert', hidden: true});
  const secretBox = h('div', {class: 'card', id: 'webhook-secret', hidden: true});
  const siteSelect = h('select', {id: 'webhook-site', name: 'site_id', required: true});
  const form = h('form', {class: 'card', id: 'new-webhook-form', 'aria-label': 'New webhook endpoint'},
    h('h2', {}, 'New endpoint'),
    h('div', {class: 'field'}, h('label', {for: 'webhook-site'}, 'Site'), siteSelect),
    h('div', {class: 'field'}, h('label', {for: 'webhook-url'}, 'URL'),
      h('input', {id: 'webhook-url', name: 'url', type: 'url', required: true, placeholder: 'https://crm.example.com/hooks/parley', size: 50})),
    h('div', {class: 'field'}, h('label', {for: 'webhook-description'}, 'Description'),
      h('input', {id: 'webhook-description', name: 'description', maxlength: 200})),
    h('fieldset', {class: 'field'}, h('legend', {}, 'Events'),
      h('label', {class: 'inline-label'}, h('input', {type: 'checkbox', name: 'event', value: '*'}), ' All events '),
      EVENT_TYPES.map((ev) => h('label', {class: 'inline-label'}, h('input', {type: 'checkbox', name: 'event', value: ev}), ' ', h('code', {}, ev), ' '))),
    h('button', {type: 'submit', class: 'primary', id: 'create-webhook'}, 'Add endpoint'), err);
  replace(root, h('h1', {id: 'page-title'}, 'Webhooks'),
    h('p', {class: 'muted'}, 'Parley POSTs each subscribed event to your URL, signed (Parley-Signature), in order per conversation, retrying for a day.'),
    secretBox, form, h('h2', {}, 'Endpoints'), list, detail);

  let sites = [];
  const siteName = (id) => sites.find((s) => s.id === id)?.name || id;

  function showSecret(e, what) {
    replace(secretBox, h('h2', {}, what),
      h('p', {}, 'Copy the signing secret now; it is not shown again.'),
      h('input', {id: 'webhook-secret-value', readonly: true, value: e.secret, size: 60, 'aria-label': 'Signing secret'}));
    secretBox.hidden = false;
  }

  async function load() {
    const {endpoints} = await get('/api/webhooks/endpoints');
    replace(list, table([
      {key: 'url', label: 'URL', render: (e) => h('code', {}, e.url)},
      {key: 'site_id', label: 'Site', format: (v) => siteName(v)},
      {key: 'events', label: 'Events', format: (v) => v.join(', ')},
      {key: 'enabled', label: 'State', format: (v) => (v ? 'Enabled' : 'Disabled')},
      {key: 'counts', label: 'Delivered / waiting / dead', render: (e) => `${e.counts.delivered} / ${e.counts.pending} / ${e.counts.dead}`},
      {key: 'id', label: '', render: (e) => h('div', {class: 'row'},
        h('button', {class: 'small', type: 'button', 'aria-label': `Send a test event to ${e.url}`, 'data-test': e.id, onclick: () => test(e)}, 'Send test event'),
        h('button', {class: 'small', type: 'button', 'aria-label': `Deliveries of ${e.url}`, onclick: () => deliveries(e)}, 'Deliveries'),
        h('button', {class: 'small', type: 'button', 'aria-label': `${e.enabled ? 'Disable' : 'Enable'} ${e.url}`, onclick: () => toggle(e)}, e.enabled ? 'Disable' : 'Enable'),
        h('button', {class: 'small', type: 'button', 'aria-label': `Rotate the secret of ${e.url}`, onclick: () => rotate(e)}, 'Rotate secret'),
        h('button', {class: 'small danger', type: 'button', 'aria-label': `Delete ${e.url}`, onclick: () => remove(e)}, 'Delete'))},
    ], endpoints, {empty: 'No endpoints yet.'}));
  }

  async function test(e) {
    try {
      const r = await post(`/api/webhooks/endpoints/${encodeURIComponent(e.id)}/test`);
      replace(detail, h('p', {id: 'webhook-test-result', role: 'status', class: r.delivered ? 'ok' : 'error'},
        r.delivered ? `Test event delivered: HTTP ${r.status} in ${r.duration_ms} ms.` : `Test event failed: ${r.error}`));
    } catch (ex) { toast(ex.message, 'error'); }
  }

  async function deliveries(e) {
    const [dead, recent] = await Promise.all([
      get(`/api/webhooks/endpoints/${encodeURIComponent(e.id)}/deliveries?status=dead`),
      get(`/api/webhooks/endpoints/${encodeURIComponent(e.id)}/deliveries?limit=20`),
    ]);
    replace(detail, h('h2', {}, `Dead deliveries of ${e.url}`), table([
      {key: 'event_type', label: 'Event'},
      {key: 'created_at', label: 'Queued', format: (v) => fmtDateTime(v)},
      {key: 'attempts', label: 'Attempts', numeric: true},
      {key: 'last_error', label: 'Last error'},
      {key: 'id', label: '', render: (d) => h('button', {class: 'small', type: 'button', onclick: () => retry(e, d)}, 'Send again')},
    ], dead.deliveries, {empty: 'None: nothing was given up on.'}),
    h('h2', {}, 'Latest deliveries'), table([
      {key: 'event_type', label: 'Event'},
      {key: 'status', label: 'Status'},
      {key: 'attempts', label: 'Attempts', numeric: true},
      {key: 'last_status', label: 'HTTP', numeric: true, format: (v) => (v || '–')},
      {key: 'last_error', label: 'Last error'},
      {key: 'next_at', label: 'Next try', format: (v, d) => (d.status === 'pending' ? fmtDateTime(v) : '')},
    ], recent.deliveries, {empty: 'No deliveries yet.'}));
  }

  async function retry(e, d) {
    try {
      await post(`/api/webhooks/deliveries/${encodeURIComponent(d.id)}/retry`);
      toast('Queued again', 'ok');
      await deliveries(e);
    } catch (ex) { toast(ex.message, 'error'); }
  }

  async function toggle(e) {
    try {
      await put(`/api/webhooks/endpoints/${encodeURIComponent(e.id)}`, {site_id: e.site_id, url: e.url, events: e.events, description: e.description, enabled: !e.enabled});
      await load();
    } catch (ex) { toast(ex.message, 'error'); }
  }

  async function rotate(e) {
    if (!(await confirmDialog('Rotate secret', `Give ${e.url} a new signing secret? Deliveries are signed with it at once.`, 'Rotate'))) return;
    try { showSecret(await post(`/api/webhooks/endpoints/${encodeURIComponent(e.id)}/secret`), 'New signing secret'); } catch (ex) { toast(ex.message, 'error'); }
  }

  async function remove(e) {
    if (!(await confirmDialog('Delete endpoint', `Delete ${e.url} and its pending deliveries?`, 'Delete', true))) return;
    try {
      await del(`/api/webhooks/endpoints/${encodeURIComponent(e.id)}`);
      replace(detail);
      await load();
    } catch (ex) { toast(ex.message, 'error'); }
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const events = [...form.querySelectorAll('input[name=event]:checked')].map((i) => i.value);
    try {
      const e = await post('/api/webhooks/endpoints', {
        site_id: siteSelect.value, url: form.elements.namedItem('url').value.trim(),
        description: form.elements.namedItem('description').value.trim(), events: events.includes('*') ? ['*'] : events,
      });
      showSecret(e, `Endpoint ${e.url} added`);
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

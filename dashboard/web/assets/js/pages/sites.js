// Admin: sites through chatsvc's admin API (docs/openapi.yaml): site key,
// allowed origins, widget look (with a contrast check of the colour),
// greeting, languages and per-language texts and overrides, business
// hours, pre-chat form, bot FAQ, identity-verification secret, data
// retention, and the copy-paste snippet.
import {h, replace, toast, confirmDialog, fmtDateTime} from '../dom.js';
import {get, post, put, del} from '../api.js';
import {contrastRatio, INK} from '../contrast.js';

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

// seconds reads a number of minutes or hours (unit seconds each) as whole
// seconds; empty means 0, the server's default.
const seconds = (text, unit) => (text.trim() === '' ? 0 : Math.round(Number(text) * unit));

const lines = (text) => text.split('\n').map((l) => l.trim()).filter(Boolean);

// parseRanges reads "09:00-12:00, 13:00-17:30" into [{from, to}].
export function parseRanges(text, day) {
  const out = [];
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\d{1,2}:\d{2})\s*[-–]\s*(\d{1,2}:\d{2})$/.exec(part);
    if (!m) throw new Error(`${day}: "${part}" is not a range like 09:00-17:30`);
    const norm = (t) => t.padStart(5, '0');
    out.push({from: norm(m[1]), to: norm(m[2])});
  }
  return out;
}

function field(id, label, input, hint) {
  return h('div', {class: 'field'}, h('label', {for: id}, label), input, hint ? h('div', {class: 'muted'}, hint) : null);
}

// contrastNote tells the admin whether white text is readable on the
// site's colour (WCAG AA, 4.5:1) and what the widget does when it is not.
export function contrastNote(color) {
  const white = contrastRatio(color, '#ffffff');
  const fmt = (r) => `${r.toFixed(1)}:1`;
  if (white >= 4.5) return {ok: true, text: `White text on this colour: ${fmt(white)}, passes WCAG AA (4.5:1).`};
  return {ok: false, text: `White text on this colour: ${fmt(white)}, fails WCAG AA (4.5:1). The widget writes in dark text on it instead (${fmt(contrastRatio(color, INK))}).`};
}

const TEXT_FIELDS = [
  ['greeting', 'Greeting'], ['reply_time', 'Expected reply time'], ['offline_message', 'Offline message'],
  ['bot_greeting', 'Bot greeting'], ['away_message', 'Away message'],
];

// flatKeys lists a catalog's keys with plural texts as key.form.
function flatKeys(catalog) {
  const out = [];
  for (const [k, v] of Object.entries(catalog)) {
    if (typeof v === 'string') out.push([k, v]);
    else for (const [form, text] of Object.entries(v)) out.push([`${k}.${form}`, text]);
  }
  return out.sort((a, b) => a[0].localeCompare(b[0]));
}

// languageSection edits the default and offered languages, the site's own
// texts per language and overrides of Parley's texts per language.
function languageSection(st, langs) {
  const names = Object.fromEntries(langs.languages.map((l) => [l.code, l.name]));
  const overrides = structuredClone(st.strings || {});
  const translations = structuredClone(st.translations || {});
  const defaultSel = h('select', {id: 'site-default_language', name: 'default_language'},
    langs.languages.map((l) => h('option', {value: l.code, selected: l.code === (st.default_language || 'en')}, `${l.name} (${l.code})`)));
  const offered = h('fieldset', {class: 'lang-offered'}, h('legend', {}, 'Languages offered (the visitor\'s browser chooses among them)'),
    langs.languages.map((l) => h('label', {class: 'inline-label'},
      h('input', {type: 'checkbox', name: 'languages', value: l.code, checked: (st.languages || []).includes(l.code)}), `${l.name} (${l.code})`)));
  const editSel = h('select', {id: 'site-text-lang'}, langs.languages.map((l) => h('option', {value: l.code}, `${l.name} (${l.code})`)));
  const textsBox = h('div', {id: 'site-texts'});
  let editing = null;

  // keep copies what the inputs of the language being edited hold.
  function keep() {
    if (!editing) return;
    if (textsBox.querySelector('[name="tr-greeting"]')) {
      const tr = {};
      for (const [name] of TEXT_FIELDS) {
        const v = textsBox.querySelector(`[name="tr-${name}"]`).value.trim();
        if (v) tr[name] = v;
      }
      if (Object.keys(tr).length) translations[editing] = tr; else delete translations[editing];
    }
    const ov = {};
    for (const input of textsBox.querySelectorAll('input[data-key]')) if (input.value.trim()) ov[input.dataset.key] = input.value;
    if (Object.keys(ov).length) overrides[editing] = ov; else delete overrides[editing];
  }

  function show(lang) {
    keep();
    editing = lang;
    const tr = translations[lang] || {};
    const ov = overrides[lang] || {};
    const rows = flatKeys(langs.catalogs[lang] || {}).map(([key, text]) => {
      const id = `ov-${lang}-${key}`.replace(/\./g, '_');
      return h('tr', {},
        h('th', {scope: 'row'}, h('label', {for: id}, h('code', {}, key))),
        h('td', {class: 'muted', lang, dir: 'auto'}, text),
        h('td', {}, h('input', {id, 'data-key': key, value: ov[key] || '', lang, dir: 'auto'})));
    });
    // The default language's own texts are the Widget and Bot fields; other
    // languages get their translations here.
    const own = lang === defaultSel.value
      ? h('p', {class: 'muted'}, `${names[lang]} is the default language: its greeting, reply time, offline message, bot greeting and away message are the Widget and Bot fields.`)
      : [h('p', {class: 'muted'}, `The site's own texts in ${names[lang]}; empty ones show the default-language text.`),
        h('div', {class: 'form-grid'}, TEXT_FIELDS.map(([name, label]) => field(`site-tr-${name}`, label,
          h('input', {id: `site-tr-${name}`, name: `tr-${name}`, value: tr[name] || '', lang, dir: 'auto'}))))];
    replace(textsBox, own,
      h('details', {id: 'site-overrides', open: Object.keys(ov).length > 0},
        h('summary', {}, `Override Parley's texts in ${names[lang]} (${Object.keys(ov).length} overridden)`),
        h('p', {class: 'muted'}, 'Keep the {placeholders} of the shipped text. Texts that count something have one line per plural form.'),
        h('div', {class: 'table-wrap'}, h('table', {class: 'data overrides'},
          h('thead', {}, h('tr', {}, ['Key', 'Shipped text', 'Your text'].map((l) => h('th', {scope: 'col'}, l)))),
          h('tbody', {}, rows)))));
  }
  editSel.addEventListener('change', () => show(editSel.value));
  defaultSel.addEventListener('change', () => show(editing));
  show(st.default_language || 'en');
  editSel.value = editing;

  const section = h('section', {class: 'card', id: 'site-languages'}, h('h3', {}, 'Languages'),
    h('div', {class: 'form-grid'}, field('site-default_language', 'Default language (of the texts above)', defaultSel)),
    offered,
    field('site-text-lang', 'Edit texts in', editSel),
    textsBox);
  return {
    section,
    values() {
      keep();
      return {
        default_language: defaultSel.value,
        languages: [...offered.querySelectorAll('input:checked')].map((i) => i.value),
        strings: overrides,
        translations,
      };
    },
  };
}

function siteEditor(site, langs, {onSaved, onDeleted}) {
  const st = site.settings || {};
  const bot = st.bot || {};
  const hours = st.hours || {};
  const weekly = hours.weekly && hours.weekly.length === 7 ? hours.weekly : [[], [], [], [], [], [], []];
  const prechat = st.prechat || {};
  const err = h('p', {class: 'error', role: 'alert', hidden: true});
  const inp = (name, attrs = {}) => h('input', {id: `site-${name}`, name, ...attrs});
  const area = (name, value, rows = 3) => h('textarea', {id: `site-${name}`, name, rows}, value || '');

  const faqBox = h('div', {id: 'faq-list'});
  let faqIds = 0;
  const faqRow = (f = {keywords: [], answer: ''}) => {
    const n = ++faqIds;
    const row = h('div', {class: 'card faq-row', style: {marginBottom: '8px'}},
      h('label', {for: `faq-keywords-${n}`}, 'Keywords or phrases (comma separated)'),
      h('input', {id: `faq-keywords-${n}`, class: 'faq-keywords', value: (f.keywords || []).join(', ')}),
      h('label', {for: `faq-answer-${n}`}, 'Answer'),
      h('textarea', {id: `faq-answer-${n}`, class: 'faq-answer', rows: 2}, f.answer || ''),
      h('label', {for: `faq-language-${n}`}, 'For visitors speaking'),
      h('select', {id: `faq-language-${n}`, class: 'faq-language'}, h('option', {value: ''}, 'Any language'),
        langs.languages.map((l) => h('option', {value: l.code, selected: l.code === f.language}, `${l.name} (${l.code})`))),
      h('button', {type: 'button', class: 'small', onclick: () => row.remove()}, 'Remove'));
    return row;
  };
  const languages = languageSection(st, langs);
  const colorInput = h('input', {id: 'site-color', name: 'color', type: 'color', value: st.color || '#4f46e5', 'aria-describedby': 'site-color-contrast'});
  const contrastOut = h('p', {id: 'site-color-contrast', class: 'contrast-note', role: 'status'});
  const showContrast = () => {
    const note = contrastNote(colorInput.value);
    contrastOut.textContent = note.text;
    contrastOut.className = `contrast-note ${note.ok ? 'ok' : 'warn'}`;
    contrastOut.dataset.ok = String(note.ok);
  };
  colorInput.addEventListener('input', showContrast);
  showContrast();
  replace(faqBox, (bot.faq || []).map(faqRow));

  const secretOut = h('code', {id: 'site-secret'}, '••••••••');
  let secretShown = false;
  const snippet = h('pre', {class: 'snippet', id: 'site-snippet'}, site.snippet || '');

  const form = h('form', {id: 'site-form', 'aria-label': `Settings of ${site.name}`},
    h('h2', {}, site.name),
    h('p', {class: 'muted'}, 'Site key ', h('code', {id: 'site-key'}, site.key), ` · created ${fmtDateTime(site.created_at)}`),
    h('section', {class: 'card'}, h('h3', {}, 'Install'),
      h('p', {class: 'muted'}, 'Paste this before </body> on every page of the site:'), snippet,
      h('button', {type: 'button', id: 'copy-snippet', onclick: async () => {
        try { await navigator.clipboard.writeText(snippet.textContent); toast('Snippet copied', 'ok'); } catch { toast('Select the snippet and copy it by hand.', 'error'); }
      }}, 'Copy snippet')),
    h('section', {class: 'card'}, h('h3', {}, 'General'),
      h('div', {class: 'form-grid'},
        field('site-name', 'Name', inp('name', {value: site.name, required: true, maxlength: 100})),
        field('site-agent_limit', 'Concurrent chats per agent', inp('agent_limit', {type: 'number', min: 1, max: 100, value: st.agent_limit || 5})),
        field('site-retention_days', 'Keep conversations for (days)', inp('retention_days', {type: 'number', min: 1, max: 3650, value: st.retention_days || 365}))),
      field('site-allowed_origins', 'Allowed origins (one per line, scheme://host[:port])', area('allowed_origins', (site.allowed_origins || []).join('\n'))),
      h('label', {class: 'inline-label'}, h('input', {type: 'checkbox', name: 'identity_required', checked: site.identity_required}),
        'Require identity verification (refuse visitors whose user hash does not verify)'),
      h('div', {class: 'row', style: {marginTop: '8px'}}, h('span', {}, 'Identity-verification secret: '), secretOut,
        h('button', {type: 'button', class: 'small', onclick: () => { secretShown = !secretShown; secretOut.textContent = secretShown ? (site.secret || '(none)') : '••••••••'; }}, 'Show/hide'),
        h('button', {type: 'button', class: 'small', id: 'rotate-secret', onclick: rotate}, 'Rotate'))),
    h('section', {class: 'card'}, h('h3', {}, 'Widget'),
      h('div', {class: 'form-grid'},
        field('site-color', 'Colour', colorInput, contrastOut),
        field('site-reply_time', 'Expected reply time', inp('reply_time', {value: st.reply_time || '', placeholder: 'a few minutes'}))),
      field('site-greeting', 'Greeting', area('greeting', st.greeting, 2)),
      field('site-offline_message', 'Offline message', area('offline_message', st.offline_message, 2)),
      field('site-avatars', 'Agent avatar URLs (one per line)', area('avatars', (st.avatars || []).join('\n'), 2))),
    languages.section,
    h('section', {class: 'card'}, h('h3', {}, 'Business hours'),
      field('site-timezone', 'Time zone', inp('timezone', {value: hours.timezone || Intl.DateTimeFormat().resolvedOptions().timeZone, placeholder: 'Europe/Paris'})),
      h('p', {class: 'muted'}, 'Ranges like 09:00-12:00, 13:00-17:30; empty = closed. Leave every day empty to be always open. A range whose end is before its start crosses midnight.'),
      h('div', {class: 'form-grid'}, DAYS.map((d, i) => field(`site-day-${i}`, d,
        h('input', {id: `site-day-${i}`, 'data-day': i, value: (weekly[i] || []).map((r) => `${r.from}-${r.to}`).join(', ')}))))),
    h('section', {class: 'card', id: 'site-targets'}, h('h3', {}, 'Service targets'),
      h('p', {class: 'muted'}, 'Reports count first responses and later agent replies within these targets (the SLA), and a first reply after the target as answered late. A conversation nothing happens to for the inactivity timeout is closed. Leave empty for the defaults.'),
      h('div', {class: 'form-grid'},
        field('site-first_response_target', 'First response within (minutes)', inp('first_response_target', {type: 'number', min: 0, step: 'any', placeholder: '5',
          value: st.first_response_target_s ? st.first_response_target_s / 60 : ''})),
        field('site-reply_target', 'Later replies within (minutes)', inp('reply_target', {type: 'number', min: 0, step: 'any', placeholder: '5',
          value: st.reply_target_s ? st.reply_target_s / 60 : ''})),
        field('site-inactivity_timeout', 'Close inactive conversations after (hours)', inp('inactivity_timeout', {type: 'number', min: 0, step: 'any', placeholder: '24',
          value: st.inactivity_timeout_s ? st.inactivity_timeout_s / 3600 : ''})))),
    h('section', {class: 'card'}, h('h3', {}, 'Pre-chat form'),
      h('label', {class: 'inline-label'}, h('input', {type: 'checkbox', name: 'prechat_enabled', checked: prechat.enabled}), 'Ask for name and email before the chat'),
      field('site-prechat_fields', 'Extra fields (one per line: name | label | required)', area('prechat_fields',
        (prechat.fields || []).map((f) => `${f.name} | ${f.label}${f.required ? ' | required' : ''}`).join('\n')))),
    h('section', {class: 'card', id: 'site-email'}, h('h3', {}, 'Email'),
      h('p', {class: 'muted'}, 'When the server has a mail server (--smtp-addr): replies a visitor did not read go out by email, in the visitor\'s language (docs/integrations.md).'),
      h('label', {class: 'inline-label'}, h('input', {type: 'checkbox', name: 'email_replies', checked: !(st.email || {}).disable_replies}), 'Email agents\' replies to visitors who left'),
      h('label', {class: 'inline-label'}, h('input', {type: 'checkbox', name: 'email_transcript', checked: !!(st.email || {}).transcript_on_resolve}), 'Email the visitor a transcript when a conversation is resolved'),
      h('div', {class: 'form-grid'},
        field('site-email_from', 'Sender name (default: the site name)', inp('email_from', {value: (st.email || {}).from_name || '', maxlength: 100}))),
      field('site-email_footer', 'Footer of every email (your postal address)', area('email_footer', (st.email || {}).footer || '', 2))),
    h('section', {class: 'card'}, h('h3', {}, 'Bot'),
      h('label', {class: 'inline-label'}, h('input', {type: 'checkbox', name: 'bot_enabled', checked: bot.enabled}), 'Let the rules bot answer first'),
      h('div', {class: 'form-grid'},
        field('site-bot_greeting', 'Bot greeting', area('bot_greeting', bot.greeting, 2)),
        field('site-bot_away', 'Away message', area('bot_away', bot.away_message, 2))),
      field('site-handover', 'Hand-over phrases (one per line)', area('handover', (bot.handover_phrases || []).join('\n'), 2)),
      field('site-webhook', 'External bot webhook URL (optional; answers instead of the rules)', inp('webhook', {type: 'url', value: bot.webhook_url || ''})),
      h('h4', {}, 'FAQ'), faqBox,
      h('button', {type: 'button', class: 'small', id: 'add-faq', onclick: () => faqBox.append(faqRow())}, 'Add answer')),
    err,
    h('div', {class: 'row', style: {marginTop: '12px'}},
      h('button', {type: 'submit', class: 'primary', id: 'save-site'}, 'Save site'),
      h('span', {class: 'spacer'}),
      h('button', {type: 'button', class: 'danger', id: 'delete-site', onclick: remove}, 'Delete site')));

  async function rotate() {
    if (!(await confirmDialog('Rotate secret', 'Existing user hashes stop verifying until your servers use the new secret.', 'Rotate', true))) return;
    try {
      const s = await post(`/api/chat/sites/${encodeURIComponent(site.id)}/secret`);
      site.secret = s.secret;
      secretShown = true;
      secretOut.textContent = s.secret;
      toast('Secret rotated', 'ok');
    } catch (ex) { toast(ex.message, 'error'); }
  }

  async function remove() {
    if (!(await confirmDialog('Delete site', `Delete ${site.name}? The widget stops working on it; past conversations stay for reports.`, 'Delete', true))) return;
    try {
      await del(`/api/chat/sites/${encodeURIComponent(site.id)}`);
      toast('Site deleted', 'ok');
      onDeleted();
    } catch (ex) { toast(ex.message, 'error'); }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.hidden = true;
    try {
      const el = form.elements;
      const weeklyOut = DAYS.map((d, i) => parseRanges(form.querySelector(`[data-day="${i}"]`).value, d));
      const fields = lines(el.namedItem('prechat_fields').value).map((l, i) => {
        const [name, label, req] = l.split('|').map((x) => (x || '').trim());
        if (!name) throw new Error(`pre-chat field line ${i + 1} has no name`);
        return {name, label: label || name, required: req === 'required'};
      });
      const faq = [...faqBox.querySelectorAll('.faq-row')].map((r) => ({
        keywords: r.querySelector('.faq-keywords').value.split(',').map((k) => k.trim()).filter(Boolean),
        answer: r.querySelector('.faq-answer').value.trim(),
        language: r.querySelector('.faq-language').value || undefined,
      })).filter((f) => f.keywords.length || f.answer);
      const body = {
        name: el.namedItem('name').value.trim(),
        allowed_origins: lines(el.namedItem('allowed_origins').value),
        identity_required: el.namedItem('identity_required').checked,
        settings: {
          ...st,
          ...languages.values(),
          color: colorInput.value,
          greeting: el.namedItem('greeting').value,
          reply_time: el.namedItem('reply_time').value,
          offline_message: el.namedItem('offline_message').value,
          avatars: lines(el.namedItem('avatars').value),
          agent_limit: Number(el.namedItem('agent_limit').value),
          retention_days: Number(el.namedItem('retention_days').value),
          first_response_target_s: seconds(el.namedItem('first_response_target').value, 60),
          reply_target_s: seconds(el.namedItem('reply_target').value, 60),
          inactivity_timeout_s: seconds(el.namedItem('inactivity_timeout').value, 3600),
          hours: {timezone: el.namedItem('timezone').value.trim(), weekly: weeklyOut.every((d) => d.length === 0) ? [] : weeklyOut},
          prechat: {enabled: el.namedItem('prechat_enabled').checked, fields},
          email: {
            disable_replies: !el.namedItem('email_replies').checked,
            transcript_on_resolve: el.namedItem('email_transcript').checked,
            from_name: el.namedItem('email_from').value.trim(),
            footer: el.namedItem('email_footer').value.trim(),
          },
          bot: {
            ...bot,
            enabled: el.namedItem('bot_enabled').checked,
            greeting: el.namedItem('bot_greeting').value,
            away_message: el.namedItem('bot_away').value,
            handover_phrases: lines(el.namedItem('handover').value),
            webhook_url: el.namedItem('webhook').value.trim(),
            faq,
          },
        },
      };
      const saved = await put(`/api/chat/sites/${encodeURIComponent(site.id)}`, body);
      toast(`Saved ${saved.name}`, 'ok');
      onSaved(saved);
    } catch (ex) {
      err.textContent = ex.message;
      err.hidden = false;
    }
  });
  return form;
}

export async function mount(root, ctx) {
  let langs = {languages: [{code: 'en', name: 'English'}], catalogs: {en: {}}};
  try {
    langs = await get('/api/chat/languages');
  } catch (ex) {
    toast(`Languages failed to load: ${ex.message}`, 'error');
  }
  const list = h('div', {id: 'sites-list'});
  const editor = h('div', {id: 'site-editor'});
  const newErr = h('p', {class: 'error', role: 'alert', hidden: true});
  const newForm = h('form', {class: 'card', id: 'new-site-form', 'aria-label': 'New site'},
    h('h2', {}, 'Add a site'),
    h('div', {class: 'form-grid'},
      field('new-site-name', 'Name', h('input', {id: 'new-site-name', name: 'name', required: true, maxlength: 100, placeholder: 'Shop'})),
      field('new-site-origins', 'Allowed origins (one per line)', h('textarea', {id: 'new-site-origins', name: 'origins', rows: 2, placeholder: 'https://shop.example'}))),
    newErr, h('button', {type: 'submit', class: 'primary'}, 'Create site'));
  replace(root, h('h1', {id: 'page-title'}, 'Sites'), list, h('div', {style: {height: '12px'}}), newForm, h('div', {style: {height: '12px'}}), editor);

  async function load(selectId) {
    let sites;
    try {
      ({sites} = await get('/api/chat/sites'));
    } catch (ex) {
      replace(list, h('p', {class: 'error'}, `Sites failed to load: ${ex.message}`));
      return;
    }
    replace(list, sites.length === 0 ? h('p', {class: 'empty'}, 'No sites yet: add one below.') : h('div', {class: 'table-wrap'}, h('table', {class: 'data', id: 'sites-table'},
      h('thead', {}, h('tr', {}, ['Site', 'Key', 'Allowed origins', ''].map((l) => h('th', {scope: 'col'}, l || h('span', {class: 'sr-only'}, 'Actions'))))),
      h('tbody', {}, sites.map((s) => h('tr', {'data-id': s.id},
        h('td', {}, s.name), h('td', {}, h('code', {}, s.key)), h('td', {}, (s.allowed_origins || []).join(', ')),
        h('td', {}, h('button', {type: 'button', class: 'small', 'aria-label': `Edit ${s.name}`, onclick: () => select(s.id)}, 'Edit'))))))));
    if (selectId) select(selectId);
  }

  async function select(id) {
    try {
      const site = await get(`/api/chat/sites/${encodeURIComponent(id)}`);
      ctx.setQuery({site: id});
      replace(editor, siteEditor(site, langs, {
        onSaved: (s) => load(s.id),
        onDeleted: () => { replace(editor); ctx.setQuery({}); load(); },
      }));
      editor.scrollIntoView({block: 'start'});
    } catch (ex) { toast(ex.message, 'error'); }
  }

  newForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    newErr.hidden = true;
    try {
      const s = await post('/api/chat/sites', {name: newForm.elements.namedItem('name').value.trim(), allowed_origins: lines(newForm.elements.namedItem('origins').value)});
      toast(`Created ${s.name}`, 'ok');
      newForm.reset();
      await load(s.id);
    } catch (ex) {
      newErr.textContent = ex.message;
      newErr.hidden = false;
    }
  });

  await load(ctx.params.get('site'));
}

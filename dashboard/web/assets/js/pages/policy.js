// The moderation policy editor with its test box: the policy being edited
// (not yet saved) is what the test runs against.
import {h, replace, toast} from '../dom.js';
import {get} from '../api.js';
import {moderationAPI, highlight} from '../moderation-api.js';

export async function mount(root, ctx) {
  const siteSel = h('select', {id: 'policy-site'}, h('option', {value: ''}, 'Default policy (all sites)'));
  const editor = h('textarea', {id: 'policy-json', rows: 22, spellcheck: 'false', style: {width: '100%', fontFamily: 'ui-monospace, monospace'}});
  const err = h('p', {class: 'error', role: 'alert', hidden: true, id: 'policy-error'});
  const testText = h('textarea', {id: 'policy-test-text', rows: 3, style: {width: '100%'}, placeholder: 'Type a message to see what the policy does with it'});
  const testOut = h('div', {id: 'policy-test-result', 'aria-live': 'polite'});
  replace(root, h('h1', {id: 'page-title'}, 'Moderation policy'),
    h('div', {class: 'toolbar'}, h('div', {class: 'group'}, h('label', {for: 'policy-site'}, 'Site'), siteSel)),
    h('div', {class: 'grid-2'},
      h('section', {class: 'card'}, h('h2', {style: {marginTop: 0}}, 'Policy (JSON)'), editor, err,
        h('div', {class: 'row'}, h('button', {type: 'button', class: 'primary', id: 'policy-save', onclick: save}, 'Save policy'),
          h('button', {type: 'button', onclick: load}, 'Discard changes'))),
      h('section', {class: 'card'}, h('h2', {style: {marginTop: 0}}, 'Test'), testText,
        h('button', {type: 'button', id: 'policy-test', onclick: test}, 'Test against this policy'), testOut)));

  get('/api/chat/sites').then((r) => {
    for (const s of r.sites || []) siteSel.append(h('option', {value: s.id, selected: s.id === ctx.params.get('site')}, s.name));
  }).catch(() => {});

  function parse() {
    try {
      err.hidden = true;
      return JSON.parse(editor.value);
    } catch (e) {
      err.textContent = `The policy is not valid JSON: ${e.message}`;
      err.hidden = false;
      return null;
    }
  }

  async function load() {
    try {
      const p = await moderationAPI.policy(siteSel.value);
      editor.value = JSON.stringify(p.policy || p, null, 2);
      err.hidden = true;
    } catch (e) {
      err.textContent = `Policy failed to load: ${e.message}`;
      err.hidden = false;
    }
  }

  async function save() {
    const p = parse();
    if (!p) return;
    try {
      await moderationAPI.savePolicy(siteSel.value, p);
      toast('Policy saved', 'ok');
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  }

  async function test() {
    const p = parse();
    if (!p) return;
    try {
      const v = await moderationAPI.testPolicy(siteSel.value, testText.value, p);
      const verdict = v.verdict || v;
      replace(testOut,
        h('p', {}, h('strong', {}, verdict.action || '?'), ` · severity ${verdict.severity ?? 0} · ${(verdict.categories || []).join(', ') || 'no category'}`),
        h('p', {class: 'text'}, highlight(testText.value, verdict.spans, h)),
        verdict.redacted ? h('p', {class: 'muted'}, 'Redacted: ', verdict.redacted) : null);
    } catch (e) {
      replace(testOut, h('p', {class: 'error'}, e.message));
    }
  }

  siteSel.addEventListener('change', () => { ctx.setQuery(siteSel.value ? {site: siteSel.value} : {}); load(); });
  await load();
}

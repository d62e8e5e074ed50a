// The moderation policy editor with its test box: the policy being edited
// (not yet saved) is what the test runs against.
import {h, replace, toast, fmtDateTime} from '../dom.js';
import {moderationAPI, highlight, siteChoices} from '../moderation-api.js';

export async function mount(root, ctx) {
  const siteSel = h('select', {id: 'policy-site'});
  const stamp = h('span', {class: 'muted', id: 'policy-stamp'});
  const editor = h('textarea', {id: 'policy-json', 'aria-labelledby': 'policy-json-title', rows: 22, spellcheck: 'false', style: {width: '100%', fontFamily: 'ui-monospace, monospace'}});
  const err = h('p', {class: 'error', role: 'alert', hidden: true, id: 'policy-error'});
  const testText = h('textarea', {id: 'policy-test-text', 'aria-labelledby': 'policy-test-title', rows: 3, style: {width: '100%'}, placeholder: 'Type a message to see what the policy does with it'});
  const testOut = h('div', {id: 'policy-test-result', 'aria-live': 'polite'});
  replace(root, h('h1', {id: 'page-title'}, 'Moderation policy'),
    h('div', {class: 'toolbar'}, h('div', {class: 'group'}, h('label', {for: 'policy-site'}, 'Site'), siteSel), stamp),
    h('div', {class: 'grid-2'},
      h('section', {class: 'card'}, h('h2', {id: 'policy-json-title', style: {marginTop: 0}}, 'Policy (JSON)'), editor, err,
        h('div', {class: 'row'}, h('button', {type: 'button', class: 'primary', id: 'policy-save', onclick: save}, 'Save policy'),
          h('button', {type: 'button', onclick: load}, 'Discard changes'))),
      h('section', {class: 'card'}, h('h2', {id: 'policy-test-title', style: {marginTop: 0}}, 'Test'), testText,
        h('button', {type: 'button', id: 'policy-test', onclick: test}, 'Test against this policy'), testOut)));

  const sites = await siteChoices();
  for (const s of sites) siteSel.append(h('option', {value: s.id, selected: s.id === ctx.params.get('site')}, s.name));

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
    if (!siteSel.value) {
      err.textContent = 'No site yet: policies are per site.';
      err.hidden = false;
      return;
    }
    try {
      const p = await moderationAPI.policy(siteSel.value);
      editor.value = JSON.stringify(p.policy, null, 2);
      stamp.textContent = p.stored ? `Saved ${fmtDateTime(p.updated_at)}` : 'Default policy (not customised for this site)';
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
      const saved = await moderationAPI.savePolicy(siteSel.value, p);
      editor.value = JSON.stringify(saved.policy, null, 2);
      stamp.textContent = 'Saved just now';
      toast('Policy saved', 'ok');
    } catch (e) {
      err.textContent = e.body?.field ? `${e.body.field}: ${e.message}` : e.message;
      err.hidden = false;
    }
  }

  async function test() {
    const p = parse();
    if (!p) return;
    try {
      const v = await moderationAPI.testPolicy(siteSel.value, testText.value, p);
      const verdict = v.verdict;
      replace(testOut,
        h('p', {}, h('strong', {}, verdict.action || '?'), ` · severity ${verdict.severity ?? 0} · ${(verdict.categories || []).join(', ') || 'no category'}`),
        h('p', {class: 'text'}, highlight(testText.value, verdict.spans, h)),
        verdict.redacted ? h('p', {class: 'muted'}, 'Redacted: ', verdict.redacted) : null,
        v.normalised ? h('p', {class: 'muted'}, 'Normalised: ', v.normalised) : null);
    } catch (e) {
      replace(testOut, h('p', {class: 'error'}, e.body?.field ? `${e.body.field}: ${e.message}` : e.message));
    }
  }

  siteSel.addEventListener('change', () => { ctx.setQuery(siteSel.value ? {site: siteSel.value} : {}); load(); });
  await load();
}

// The app shell: navigation built from the pages the server says this user
// may open, a client-side router that loads each page's module, the theme
// toggle and sign-out.
import {applyTheme, toggleTheme} from './theme.js';
import {h, replace, toast} from './dom.js';
import {post} from './api.js';

applyTheme();

const body = document.body;
const user = JSON.parse(body.dataset.user || '{}');
const pages = JSON.parse(body.dataset.pages || '[]');
const assets = body.dataset.assets;
const product = body.dataset.product || 'Parley';
const main = document.getElementById('main');
const nav = document.getElementById('nav');

export const session = {
  user,
  has(role) { return (user.roles || []).some((r) => r === role || r === 'admin'); },
};

function pageFor(path) {
  let best = null;
  for (const pg of pages) {
    if ((path === pg.path || path.startsWith(pg.path + '/')) && (!best || pg.path.length > best.path.length)) best = pg;
  }
  return best;
}

function buildNav() {
  const sections = new Map();
  for (const pg of pages) {
    if (pg.hidden) continue;
    if (!sections.has(pg.section)) sections.set(pg.section, []);
    sections.get(pg.section).push(pg);
  }
  replace(nav, [...sections].map(([name, list]) => h('div', {class: 'nav-section'},
    h('h2', {class: 'nav-heading'}, name),
    h('ul', {}, list.map((pg) => h('li', {}, h('a', {href: pg.path, 'data-path': pg.path}, pg.title)))))));
}

function markNav(path) {
  const current = pageFor(path);
  for (const a of nav.querySelectorAll('a')) {
    if (current && a.dataset.path === current.path) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

let cleanup = null;
let generation = 0;

function message(title, text) {
  document.title = `${title} · ${product}`;
  replace(main, h('h1', {id: 'page-title'}, title), h('p', {class: 'muted'}, text));
}

async function route(initialStatus) {
  const gen = ++generation;
  if (cleanup) { try { cleanup(); } catch (err) { console.error(err); } cleanup = null; }
  const path = location.pathname.replace(/\/$/, '');
  markNav(path);
  closeNav();
  if (initialStatus === 404) return message('Not found', 'There is no page at this address.');
  const pg = pageFor(path);
  if (initialStatus === 403 || !pg) {
    return message('No access', 'Your role does not include this page. Ask an admin if you need it.');
  }
  document.title = `${pg.title} · ${product}`;
  replace(main, h('h1', {id: 'page-title'}, pg.title), h('p', {class: 'muted'}, 'Loading…'));
  try {
    const mod = await import(`${assets}js/pages/${pg.module}`);
    if (gen !== generation) return;
    const root = h('div', {class: 'page', 'data-page': pg.module.replace('.js', '')});
    replace(main, root);
    const ctx = {
      user, session, page: pg, navigate,
      rest: path.slice(pg.path.length).replace(/^\//, ''),
      params: new URLSearchParams(location.search),
      setTitle(t) { document.title = `${t} · ${product}`; },
      setQuery(params) {
        const q = new URLSearchParams(params);
        history.replaceState(null, '', location.pathname + (q.toString() ? '?' + q : ''));
      },
    };
    cleanup = (await mod.mount(root, ctx)) || null;
  } catch (err) {
    if (gen !== generation) return;
    console.error(err);
    message(pg.title, `This page failed to load: ${err.message}`);
  }
}

export function navigate(path, {replace: rep = false} = {}) {
  if (rep) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  route();
  main.focus({preventScroll: true});
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || a.target || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith('/app/')) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => route());

function closeNav() {
  body.classList.remove('nav-open');
  document.getElementById('nav-toggle').setAttribute('aria-expanded', 'false');
}
document.getElementById('nav-toggle').addEventListener('click', (e) => {
  const open = body.classList.toggle('nav-open');
  e.currentTarget.setAttribute('aria-expanded', String(open));
  if (open) nav.querySelector('a')?.focus();
});
// Escape closes the folded menu and gives focus back to its button.
document.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape' || !body.classList.contains('nav-open')) return;
  closeNav();
  document.getElementById('nav-toggle').focus();
});
document.getElementById('theme-toggle').addEventListener('click', () => toggleTheme());
document.getElementById('whoami').textContent = `${user.name || user.email} · ${(user.roles || []).join(', ')}`;
document.getElementById('logout').addEventListener('click', async () => {
  try {
    await post('/api/auth/logout');
  } catch (err) {
    toast(`Sign-out failed: ${err.message}`, 'error');
    return;
  }
  location.assign('/login');
});

buildNav();
route(Number(body.dataset.status));

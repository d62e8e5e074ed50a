// Light and dark themes: the system preference by default, overridden by
// the toggle (kept in localStorage).

const KEY = 'parley-theme';

export function currentTheme() {
  const saved = localStorage.getItem(KEY);
  if (saved === 'light' || saved === 'dark') return saved;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function applyTheme() {
  const saved = localStorage.getItem(KEY);
  if (saved === 'light' || saved === 'dark') document.documentElement.dataset.theme = saved;
  else delete document.documentElement.dataset.theme;
}

export function toggleTheme() {
  const next = currentTheme() === 'dark' ? 'light' : 'dark';
  localStorage.setItem(KEY, next);
  applyTheme();
  window.dispatchEvent(new CustomEvent('parley-theme', {detail: next}));
  return next;
}

applyTheme();

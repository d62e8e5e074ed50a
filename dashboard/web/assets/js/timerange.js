// Date ranges in the viewer's time zone: presets, custom ranges and the
// bucket that suits a range.

export const viewerTZ = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

function startOfDay(d) { return new Date(d.getFullYear(), d.getMonth(), d.getDate()); }
function addDays(d, n) { return new Date(d.getFullYear(), d.getMonth(), d.getDate() + n); }

export const PRESETS = [
  ['today', 'Today'], ['yesterday', 'Yesterday'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days'],
  ['month', 'This month'], ['90d', 'Last 90 days'], ['custom', 'Custom'],
];

// presetRange returns [from, to) as Dates in local time.
export function presetRange(preset, now = new Date()) {
  const today = startOfDay(now);
  switch (preset) {
    case 'today': return [today, addDays(today, 1)];
    case 'yesterday': return [addDays(today, -1), today];
    case '30d': return [addDays(today, -29), addDays(today, 1)];
    case 'month': return [new Date(today.getFullYear(), today.getMonth(), 1), addDays(today, 1)];
    case '90d': return [addDays(today, -89), addDays(today, 1)];
    case '7d':
    default: return [addDays(today, -6), addDays(today, 1)];
  }
}

// customRange reads two yyyy-mm-dd inputs as whole local days.
export function customRange(fromStr, toStr) {
  const parse = (s) => {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s || '');
    return m ? new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : null;
  };
  const from = parse(fromStr);
  const to = parse(toStr);
  if (!from || !to) throw new Error('Choose both dates of the custom range.');
  if (to < from) throw new Error('The end date is before the start date.');
  return [from, addDays(to, 1)];
}

export function autoBucket(from, to) {
  const days = (to - from) / 86400000;
  if (days <= 2) return 'hour';
  if (days <= 92) return 'day';
  return 'week';
}

export function dateInput(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

export function startOfToday() { return startOfDay(new Date()); }

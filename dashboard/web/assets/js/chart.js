// A small SVG chart module: line and bar charts with axes and units,
// tooltips with exact values, keyboard focus and click-to-drill-down on
// every point, empty states, and x labels thinned so they never overlap.
// Colours come from CSS variables, so light and dark themes just work.
//
//   const c = chart(container, {
//     type: 'line' | 'bar', stacked: false,
//     x: [ms timestamps | labels], xKind: 'time' | 'category', bucket: 'hour'|'day'|'week', tz,
//     series: [{name, values: [number|null, ...]}],
//     unit: 'count' | 'duration' | 'percent' | 'rating', unitLabel: 'conversations',
//     height: 240, empty: 'No conversations in this range.', title: 'Volume',
//     onSelect: (index, seriesIndex) => {...},   // click: the series under the pointer; keys 1–9: that series
//   });
//   c.update(newOptions); c.destroy();
import {h, s, replace, fmtDuration, fmtNumber} from './dom.js';

const MAX_SERIES_COLOURS = 6;
const CHAR_W = 6.6; // px per character of an 11px label; errs on the wide side

// niceStep returns a round step (1, 2, 2.5, 5 × 10^k) for about `count` ticks over span.
export function niceStep(span, count) {
  if (!(span > 0)) return 1;
  const raw = span / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

// yScaleFor picks the display unit for the axis: durations in s, min or h.
export function axisUnit(unit, max, unitLabel) {
  switch (unit) {
    case 'duration':
      if (max < 2000) return {div: 1, label: 'milliseconds', fmt: (v) => (v < 1000 ? `${fmtNumber(v)} ms` : fmtDuration(v))};
      if (max < 120000) return {div: 1000, label: 'seconds', fmt: fmtDuration};
      if (max < 2 * 3600000) return {div: 60000, label: 'minutes', fmt: fmtDuration};
      return {div: 3600000, label: 'hours', fmt: fmtDuration};
    case 'percent':
      return {div: 1, label: '%', fmt: (v) => `${fmtNumber(v, 1)} %`};
    case 'rating':
      return {div: 1, label: unitLabel || 'rating (1–5)', fmt: (v) => fmtNumber(v, 2)};
    default:
      return {div: 1, label: unitLabel || '', fmt: (v) => fmtNumber(v, 2)};
  }
}

// ticks returns tick values from 0 to at least max.
export function ticks(max, count) {
  if (!(max > 0)) return [0, 1];
  const step = niceStep(max, count);
  const out = [];
  for (let v = 0; v <= max + step * 0.999; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

function fmtX(x, opts, long) {
  if (opts.xKind !== 'time') return String(x);
  const d = new Date(x);
  const tz = opts.tz;
  if (opts.bucket === 'hour') {
    return long
      ? d.toLocaleString(undefined, {timeZone: tz, weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit'})
      : d.toLocaleTimeString(undefined, {timeZone: tz, hour: '2-digit', minute: '2-digit'});
  }
  if (opts.bucket === 'week') {
    const label = d.toLocaleDateString(undefined, {timeZone: tz, day: 'numeric', month: 'short'});
    return long ? `Week of ${d.toLocaleDateString(undefined, {timeZone: tz, dateStyle: 'medium'})}` : label;
  }
  return long
    ? d.toLocaleDateString(undefined, {timeZone: tz, weekday: 'short', day: 'numeric', month: 'short', year: 'numeric'})
    : d.toLocaleDateString(undefined, {timeZone: tz, day: 'numeric', month: 'short'});
}

// labelStep returns every how many x labels to draw so that none overlap.
export function labelStep(labels, bandWidth) {
  const widest = Math.max(0, ...labels.map((l) => l.length)) * CHAR_W + 10;
  return Math.max(1, Math.ceil(widest / Math.max(1, bandWidth)));
}

function hasData(series) {
  return series.some((se) => se.values.some((v) => v !== null && v !== undefined && !Number.isNaN(v)));
}

export function chart(container, options) {
  const root = h('div', {class: 'chart'});
  container.append(root);
  let opts = options;
  let width = container.clientWidth || 600;
  const ro = new ResizeObserver(() => {
    const w = container.clientWidth;
    if (w && Math.abs(w - width) > 2) { width = w; draw(); }
  });
  ro.observe(container);

  function draw() {
    const height = opts.height || 240;
    const series = (opts.series || []).map((se) => ({...se, values: se.values || []}));
    const xs = opts.x || [];
    if (xs.length === 0 || !hasData(series)) {
      replace(root, h('div', {class: 'chart-empty', role: 'img', 'aria-label': `${opts.title || 'Chart'}: ${opts.empty || 'no data'}`, style: {height: `${height}px`}},
        opts.empty || 'No data in this range.'));
      return;
    }
    const n = xs.length;
    const stacked = opts.type === 'bar' && opts.stacked;
    let max = 0;
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (const se of series) {
        const v = se.values[i] ?? 0;
        if (stacked) sum += v; else max = Math.max(max, v);
      }
      if (stacked) max = Math.max(max, sum);
    }
    if (opts.unit === 'rating') max = Math.max(max, 5);
    if (opts.unit === 'percent') max = Math.max(max, Math.min(100, max));
    const unit = axisUnit(opts.unit, max, opts.unitLabel);
    const plotH = height - 20 - 30;
    const tickVals = ticks(max / unit.div, Math.max(2, Math.min(5, Math.floor(plotH / 28))));
    const top = tickVals[tickVals.length - 1] * unit.div || 1;
    const tickLabels = tickVals.map((v) => fmtNumber(v, 2));
    const left = Math.max(...tickLabels.map((l) => l.length)) * CHAR_W + 14;
    const right = 12;
    const plotW = Math.max(60, width - left - right);
    const band = plotW / n;
    const y = (v) => 20 + plotH - (v / top) * plotH;
    const xc = (i) => left + band * i + band / 2;

    const svg = s('svg', {viewBox: `0 0 ${width} ${height}`, height, role: 'group', 'aria-label': opts.title || 'Chart'});
    // Grid and y axis.
    const yAxis = s('g', {class: 'axis y-axis'});
    tickVals.forEach((tv, k) => {
      const yy = y(tv * unit.div);
      yAxis.append(s('line', {class: 'grid-line', x1: left, x2: left + plotW, y1: yy, y2: yy}));
      yAxis.append(s('text', {x: left - 6, y: yy + 4, 'text-anchor': 'end'}, tickLabels[k]));
    });
    yAxis.append(s('text', {class: 'unit-label', x: 0, y: 11}, unit.label));
    svg.append(yAxis);
    // X axis with thinned labels.
    const xLabels = xs.map((x) => fmtX(x, opts, false));
    const step = labelStep(xLabels, band);
    const xAxis = s('g', {class: 'axis x-axis'});
    xAxis.append(s('line', {class: 'axis-line', x1: left, x2: left + plotW, y1: 20 + plotH, y2: 20 + plotH}));
    for (let i = 0; i < n; i += step) {
      xAxis.append(s('text', {x: xc(i), y: 20 + plotH + 16, 'text-anchor': 'middle'}, xLabels[i]));
    }
    svg.append(xAxis);

    // Marks.
    const marks = s('g', {});
    if (opts.type === 'bar') {
      const groupW = Math.max(2, band * 0.75);
      const barW = stacked ? groupW : Math.max(1, groupW / series.length);
      for (let i = 0; i < n; i++) {
        let base = 0;
        series.forEach((se, k) => {
          const v = se.values[i];
          if (v === null || v === undefined) return;
          const cls = `bar c${(k % MAX_SERIES_COLOURS) + 1}`;
          if (stacked) {
            marks.append(s('rect', {class: cls, x: xc(i) - groupW / 2, y: y(base + v), width: groupW, height: Math.max(0, y(base) - y(base + v))}));
            base += v;
          } else {
            marks.append(s('rect', {class: cls, x: xc(i) - groupW / 2 + k * barW, y: y(v), width: Math.max(1, barW - 1), height: Math.max(0, y(0) - y(v))}));
          }
        });
      }
    } else {
      series.forEach((se, k) => {
        const cls = `c${(k % MAX_SERIES_COLOURS) + 1}`;
        let d = '';
        let pen = false;
        se.values.forEach((v, i) => {
          if (v === null || v === undefined || Number.isNaN(v)) { pen = false; return; }
          d += `${pen ? 'L' : 'M'}${xc(i).toFixed(1)},${y(v).toFixed(1)}`;
          pen = true;
        });
        marks.append(s('path', {class: `line ${cls}`, d}));
        if (n <= 90) {
          se.values.forEach((v, i) => {
            if (v === null || v === undefined) return;
            marks.append(s('circle', {class: `dot ${cls}`, cx: xc(i), cy: y(v), r: n <= 40 ? 3 : 2}));
          });
        }
      });
    }
    svg.append(marks);

    // Hover/focus targets, one per x band.
    const hover = s('line', {class: 'hover-line', x1: 0, x2: 0, y1: 20, y2: 20 + plotH, visibility: 'hidden'});
    svg.append(hover);
    const tip = h('div', {class: 'chart-tooltip', hidden: true, role: 'tooltip'});
    const hits = s('g', {class: 'hits'});
    const describe = (i) => `${fmtX(xs[i], opts, true)}: ` + series.map((se) => `${se.name} ${se.values[i] === null || se.values[i] === undefined ? 'no data' : unit.fmt(se.values[i])}`).join(', ');
    const show = (i) => {
      hover.setAttribute('x1', xc(i));
      hover.setAttribute('x2', xc(i));
      hover.setAttribute('visibility', 'visible');
      replace(tip,
        h('div', {class: 't-title'}, fmtX(xs[i], opts, true)),
        series.map((se, k) => h('div', {}, h('span', {class: `swatch c${(k % MAX_SERIES_COLOURS) + 1}`}), `${se.name}: `,
          h('strong', {}, se.values[i] === null || se.values[i] === undefined ? 'no data' : unit.fmt(se.values[i])))),
        opts.onSelect ? h('div', {class: 'muted'}, 'Click for conversations') : null);
      tip.hidden = false;
      const px = xc(i) / width * root.clientWidth;
      const tw = tip.offsetWidth;
      tip.style.left = `${Math.min(Math.max(0, px + 12), Math.max(0, root.clientWidth - tw))}px`;
      tip.style.top = '24px';
    };
    const hideTip = () => { tip.hidden = true; hover.setAttribute('visibility', 'hidden'); };
    // seriesAt picks the series a click at (clientX, clientY) in band i
    // points at: the bar under it (grouped or stacked), or the nearest line.
    const seriesAt = (i, e) => {
      const ctm = svg.getScreenCTM();
      if (!ctm || !e.clientX && !e.clientY) return 0;
      const pt = new DOMPoint(e.clientX, e.clientY).matrixTransform(ctm.inverse());
      if (opts.type === 'bar' && !stacked) {
        const groupW = Math.max(2, band * 0.75);
        const k = Math.floor((pt.x - (xc(i) - groupW / 2)) / (groupW / series.length));
        return Math.min(series.length - 1, Math.max(0, k));
      }
      let best = 0;
      let bestD = Infinity;
      let base = 0;
      series.forEach((se, k) => {
        const v = se.values[i];
        if (v === null || v === undefined) return;
        const top = y(stacked ? base + v : v);
        const bottom = stacked ? y(base) : top;
        const d = pt.y >= top && pt.y <= bottom ? 0 : Math.min(Math.abs(pt.y - top), Math.abs(pt.y - bottom));
        if (d < bestD) { best = k; bestD = d; }
        if (stacked) base += v;
      });
      return best;
    };
    for (let i = 0; i < n; i++) {
      const r = s('rect', {class: 'hit', x: left + band * i, y: 20, width: band, height: plotH, tabindex: i === 0 ? 0 : -1,
        role: opts.onSelect ? 'button' : 'img', 'aria-label': describe(i), 'data-index': i});
      r.addEventListener('mouseenter', () => show(i));
      r.addEventListener('focus', () => show(i));
      r.addEventListener('mouseleave', hideTip);
      r.addEventListener('blur', hideTip);
      r.addEventListener('click', (e) => opts.onSelect && opts.onSelect(i, seriesAt(i, e)));
      r.addEventListener('keydown', (e) => {
        let to = null;
        if (e.key === 'ArrowRight') to = Math.min(n - 1, i + 1);
        if (e.key === 'ArrowLeft') to = Math.max(0, i - 1);
        if (e.key === 'Home') to = 0;
        if (e.key === 'End') to = n - 1;
        if (to !== null) {
          e.preventDefault();
          r.setAttribute('tabindex', -1);
          const next = hits.children[to];
          next.setAttribute('tabindex', 0);
          next.focus();
        }
        if ((e.key === 'Enter' || e.key === ' ') && opts.onSelect) { e.preventDefault(); opts.onSelect(i, 0); }
        const digit = Number(e.key);
        if (opts.onSelect && digit >= 1 && digit <= series.length) { e.preventDefault(); opts.onSelect(i, digit - 1); }
      });
      hits.append(r);
    }
    svg.append(hits);
    const legend = h('div', {class: 'legend'}, series.map((se, k) =>
      h('span', {}, h('span', {class: `swatch c${(k % MAX_SERIES_COLOURS) + 1}`}), se.name)));
    replace(root, legend, svg, tip);
  }

  draw();
  return {
    update(next) { opts = {...opts, ...next}; draw(); },
    destroy() { ro.disconnect(); root.remove(); },
    element: root,
  };
}

package dashboard

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/browsertest"
)

// chartPage loads the chart module into a bare page of the dashboard's own
// origin and exposes it as window.chartMod.
const chartPage = `(async () => {
  const href = document.querySelector('link[rel=stylesheet]').getAttribute('href');
  window.chartMod = await import(href.replace('css/app.css', 'js/chart.js'));
  window.themeMod = await import(href.replace('css/app.css', 'js/theme.js'));
  document.body.className = '';
  document.body.replaceChildren();
  return true;
})()`

func TestBrowserChart(t *testing.T) {
	s := startServer(t)
	ctx := browsertest.New(t, 1000, 900)
	do(t, ctx, "open", chromedp.Navigate(s.URL+"/login"))
	waitFor(t, ctx, `!!document.querySelector('#login-form')`)
	eval[bool](t, ctx, chartPage)
	// 60 daily points in a narrow box: labels must be thinned, not overlap.
	eval[bool](t, ctx, `(() => {
	  const mk = (id, w) => { const b = document.createElement('div'); b.id = id; b.style.width = w + 'px'; b.style.margin = '16px'; document.body.append(b); return b; };
	  const start = Date.UTC(2025, 0, 1);
	  const xs = Array.from({length: 60}, (_, i) => start + i * 86400000);
	  window.picked = [];
	  chartMod.chart(mk('volume', 420), {type: 'bar', title: 'Volume', unit: 'count', unitLabel: 'conversations', x: xs, xKind: 'time', bucket: 'day', tz: 'UTC',
	    series: [{name: 'New', values: xs.map((_, i) => i * 3 + 1)}, {name: 'Missed', values: xs.map((_, i) => i % 5)}],
	    onSelect: (i) => window.picked.push(i)});
	  chartMod.chart(mk('frt', 640), {type: 'line', title: 'First response', unit: 'duration', x: xs.slice(0, 14), xKind: 'time', bucket: 'day', tz: 'UTC',
	    series: [{name: 'Median', values: xs.slice(0, 14).map((_, i) => i === 3 ? null : 83000 + i * 1000)}, {name: 'p90', values: xs.slice(0, 14).map((_, i) => 200000 + i * 5000)}]});
	  chartMod.chart(mk('empty', 420), {type: 'line', title: 'CSAT', unit: 'percent', x: xs, xKind: 'time', bucket: 'day', tz: 'UTC',
	    series: [{name: 'Positive', values: xs.map(() => null)}], empty: 'No ratings in this range.'});
	  return true;
	})()`)
	labels := eval[[][]float64](t, ctx, `[...document.querySelectorAll('#volume .x-axis text')].map(t => { const r = t.getBoundingClientRect(); return [r.left, r.right]; })`)
	if len(labels) < 3 || len(labels) >= 60 {
		t.Fatalf("volume chart draws %d x labels; want thinned but present", len(labels))
	}
	for i := 1; i < len(labels); i++ {
		if labels[i][0] < labels[i-1][1] {
			t.Fatalf("x labels %d and %d overlap: %v %v", i-1, i, labels[i-1], labels[i])
		}
	}
	// The y axis names its unit, and ticks reach the maximum (178).
	if u := eval[string](t, ctx, `document.querySelector('#volume .unit-label').textContent`); u != "conversations" {
		t.Fatalf("unit label %q", u)
	}
	ticks := eval[[]string](t, ctx, `[...document.querySelectorAll('#volume .y-axis text:not(.unit-label)')].map(t => t.textContent)`)
	if ticks[0] != "0" || len(ticks) < 3 || len(ticks) > 6 || ticks[len(ticks)-1] != "200" {
		t.Fatalf("y ticks %v", ticks)
	}
	// Hovering a band shows the exact values; clicking drills down.
	eval[bool](t, ctx, `(document.querySelectorAll('#volume .hits rect')[10].dispatchEvent(new MouseEvent('mouseenter')), true)`)
	tip := eval[string](t, ctx, `document.querySelector('#volume .chart-tooltip').textContent`)
	if !strings.Contains(tip, "New: 31") || !strings.Contains(tip, "Missed: 0") || !strings.Contains(tip, "2025") {
		t.Fatalf("tooltip %q", tip)
	}
	eval[bool](t, ctx, `(document.querySelectorAll('#volume .hits rect')[10].dispatchEvent(new MouseEvent('click')), true)`)
	// Keyboard: focus the first band, move right twice, Enter.
	eval[bool](t, ctx, `(() => { const r = document.querySelector('#volume .hits rect'); r.focus();
	  for (const k of ['ArrowRight', 'ArrowRight']) document.activeElement.dispatchEvent(new KeyboardEvent('keydown', {key: k}));
	  document.activeElement.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'})); return true; })()`)
	if picked := eval[[]int](t, ctx, `window.picked`); len(picked) != 2 || picked[0] != 10 || picked[1] != 2 {
		t.Fatalf("drill-down picked %v, want [10 2]", picked)
	}
	// Durations: axis in seconds or minutes, tooltip with the exact duration; a gap for null.
	eval[bool](t, ctx, `(document.querySelectorAll('#frt .hits rect')[0].dispatchEvent(new MouseEvent('mouseenter')), true)`)
	tip = eval[string](t, ctx, `document.querySelector('#frt .chart-tooltip').textContent`)
	if !strings.Contains(tip, "Median: 1 min 23 s") || !strings.Contains(tip, "p90: 3 min 20 s") {
		t.Fatalf("duration tooltip %q", tip)
	}
	if u := eval[string](t, ctx, `document.querySelector('#frt .unit-label').textContent`); u != "minutes" {
		t.Fatalf("duration unit %q", u)
	}
	if d := eval[string](t, ctx, `document.querySelector('#frt path.line').getAttribute('d')`); strings.Count(d, "M") != 2 {
		t.Fatalf("a null point should split the line in two: %s", d)
	}
	if e := eval[string](t, ctx, `document.querySelector('#empty .chart-empty').textContent`); e != "No ratings in this range." {
		t.Fatalf("empty state %q", e)
	}
	browsertest.Screenshot(t, ctx, "dashboard-chart-light")
	// Dark theme: the toggle switches the palette the charts use.
	light := eval[string](t, ctx, `getComputedStyle(document.querySelector('#volume rect.bar')).fill`)
	eval[bool](t, ctx, `(localStorage.setItem('parley-theme', 'light'), themeMod.toggleTheme(), true)`)
	dark := eval[string](t, ctx, `getComputedStyle(document.querySelector('#volume rect.bar')).fill`)
	if light == dark || eval[string](t, ctx, `document.documentElement.dataset.theme`) != "dark" {
		t.Fatalf("dark theme did not change the bar colour (%s → %s)", light, dark)
	}
	eval[bool](t, ctx, `(document.body.style.background = getComputedStyle(document.documentElement).getPropertyValue('--bg'), true)`)
	browsertest.Screenshot(t, ctx, "dashboard-chart-dark")
}

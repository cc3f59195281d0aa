// The console's only script: draws the charts from data the server put in data-* attributes (as
// JSON text, never markup) with uPlot. Pages work without it; the numbers are also in the text.
import uPlot from 'uplot';

const series = (el: HTMLElement, name: string): number[] => {
  try {
    const v: unknown = JSON.parse(el.dataset[name] ?? '[]');
    return Array.isArray(v) ? v.map(Number) : [];
  } catch {
    return [];
  }
};

const width = (el: HTMLElement) => Math.max(280, el.clientWidth || el.parentElement?.clientWidth || 600);

/**
 * Issued, denied and failed per minute as stacked bars: each series is drawn as the running total
 * (failed on top of denied on top of issued), tallest first so every segment stays visible; the
 * legend shows each series' own count.
 */
function decisionsChart(el: HTMLElement): uPlot {
  const start = Number(el.dataset.start);
  const step = Number(el.dataset.step);
  const own = { issued: series(el, 'allow'), denied: series(el, 'deny'), failed: series(el, 'error') };
  const xs = own.issued.map((_, i) => start + i * step);
  const upToDenied = own.issued.map((v, i) => v + (own.denied[i] ?? 0));
  const upToFailed = upToDenied.map((v, i) => v + (own.failed[i] ?? 0));
  const bars = uPlot.paths.bars!({ size: [0.9, 12] });
  const count = (name: keyof typeof own) => (_u: uPlot, _v: number | null, _s: number, i: number | null) => (i === null ? '--' : String(own[name][i] ?? 0));
  return new uPlot(
    {
      width: width(el),
      height: 180,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [{}, { size: 40 }],
      series: [
        {},
        { label: 'failed', stroke: '#8a5a00', fill: 'rgba(138,90,0,0.45)', paths: bars, value: count('failed') },
        { label: 'denied', stroke: '#b3261e', fill: 'rgba(179,38,30,0.45)', paths: bars, value: count('denied') },
        { label: 'issued', stroke: '#1b7f3b', fill: 'rgba(27,127,59,0.45)', paths: bars, value: count('issued') },
      ],
    },
    [xs, upToFailed, upToDenied, own.issued],
    el,
  );
}

function histogramChart(el: HTMLElement): uPlot {
  let labels: string[] = [];
  try {
    labels = JSON.parse(el.dataset.labels ?? '[]') as string[];
  } catch {
    labels = [];
  }
  const counts = series(el, 'counts');
  return new uPlot(
    {
      width: width(el),
      height: 160,
      cursor: { show: false },
      legend: { show: false },
      scales: { x: { time: false, range: [-0.5, counts.length - 0.5] }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [{ values: (_u, ticks) => ticks.map((t) => labels[t] ?? ''), splits: () => counts.map((_, i) => i) }, { size: 40 }],
      series: [{}, { label: 'keys', stroke: '#27509b', fill: 'rgba(39,80,155,0.35)', paths: uPlot.paths.bars!({ size: [0.6, 80] }), points: { show: false } }],
    },
    [counts.map((_, i) => i), counts],
    el,
  );
}

const charts: Array<[HTMLElement, uPlot]> = [];
for (const el of document.querySelectorAll<HTMLElement>('[data-chart]')) {
  const chart = el.dataset.chart === 'histogram' ? histogramChart(el) : decisionsChart(el);
  charts.push([el, chart]);
}
let pending = 0;
window.addEventListener('resize', () => {
  cancelAnimationFrame(pending);
  pending = requestAnimationFrame(() => {
    for (const [el, chart] of charts) chart.setSize({ width: width(el), height: chart.height });
  });
});

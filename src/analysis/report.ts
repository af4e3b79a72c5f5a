/**
 * The HTML report of `lowrank analyze --html`: one self-contained file (no scripts, no network)
 * with a header, the summary, charts as inline SVG and a table of the per-layer numbers.
 *
 * Charts are Vega-Lite specs compiled by `vega-lite` and rendered to SVG by `vega`'s headless View:
 * - singular value spectra (log–log), one line per matrix, small multiples by module;
 * - energy curves, cumulative Σσ²/‖W‖_F² against the rank fraction i/K, small multiples by module;
 * - effective rank and alpha per layer index, colored by module;
 * - a layer × module heatmap of alpha (of stable rank when some matrix has no alpha);
 * - with a comparison, intruder dimensions per layer.
 *
 * The spectra and energy curves need the singular values, which `analyzeModel` keeps with
 * `keepSpectra: true` (in each layer's spectrum.values); without them those two charts are left out.
 * Long spectra are thinned to at most {@link MAX_POINTS} log-spaced indices per matrix.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { LayerRecord, ModelAnalysis } from './model.js';

/** The most points a spectrum or energy curve keeps per matrix. */
export const MAX_POINTS = 512;

/** Options of {@link renderReport}. */
export interface ReportOptions {
  /** The page title (and first heading). */
  title?: string;
}

/** 0-based indices 0..n-1 thinned to at most `max`, log-spaced (always with the first and last). */
export function logSpacedIndices(n: number, max = MAX_POINTS): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  const set = new Set<number>();
  for (let j = 0; j < max; j++) set.add(Math.min(n - 1, Math.round(Math.exp((Math.log(n) * j) / (max - 1))) - 1)); // j = max − 1 gives n − 1
  return [...set].sort((a, b) => a - b);
}

/** Rounds to 5 significant digits (smaller SVG data, same picture). */
function r5(x: number): number {
  return Number.isFinite(x) && x !== 0 ? +x.toPrecision(5) : x;
}

/** A Vega-Lite spec compiled and rendered to an SVG string (headless, no DOM). */
export async function svgOf(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** One layer of a layered Vega-Lite spec. */
type LayerOf = Extract<TopLevelSpec, { layer: unknown }>['layer'][number];

/** The charts' font and frame. */
export const FONT = { config: { font: 'sans-serif', view: { stroke: '#ddd' } } } as const;

function moduleOrder(layers: readonly LayerRecord[]): string[] {
  return [...new Set(layers.map((l) => l.module))];
}

function spectrumSpec(layers: readonly LayerRecord[], spectra: ReadonlyMap<string, ArrayLike<number>>, modules: string[]): TopLevelSpec[] {
  const sv: Record<string, unknown>[] = [];
  const energy: Record<string, unknown>[] = [];
  for (const l of layers) {
    const s = spectra.get(l.name);
    if (s === undefined || s.length === 0) continue;
    const total = l.spectrum.frobenius ** 2;
    const cum = new Float64Array(s.length);
    let acc = 0;
    for (let i = 0; i < s.length; i++) cum[i] = acc += s[i] * s[i];
    const K = l.spectrum.numEvals;
    const layer = l.layer;
    for (const i of logSpacedIndices(s.length)) {
      if (s[i] > 0) sv.push({ name: l.name, module: l.module, layer, i: i + 1, sigma: r5(s[i]) });
      if (total > 0) energy.push({ name: l.name, module: l.module, layer, f: r5((i + 1) / K), e: r5(Math.min(1, cum[i] / total)) });
    }
  }
  const facet = { field: 'module', type: 'nominal', sort: modules, title: null } as const;
  // Matrices outside the blocks (embeddings, lm_head) have no layer index: drawn grey by a second layer.
  const lines = (extra: { clip?: boolean }): LayerOf[] => [
    { transform: [{ filter: 'datum.layer !== null' }], mark: { type: 'line', strokeWidth: 1, ...extra }, encoding: { color: { field: 'layer', type: 'quantitative', title: 'layer', scale: { scheme: 'viridis' } } } },
    { transform: [{ filter: 'datum.layer === null' }], mark: { type: 'line', strokeWidth: 1, color: '#888', ...extra } },
  ];
  // One line per matrix, small multiples by module; x and y are the encodings of the two axes.
  const chart = (title: string, values: Record<string, unknown>[], x: object, y: object, clip: boolean): TopLevelSpec => ({
    ...FONT,
    title,
    data: { values },
    facet,
    columns: 4,
    spec: { width: 220, height: 160, encoding: { x, y, detail: { field: 'name', type: 'nominal' } }, layer: lines(clip ? { clip } : {}) },
  });
  const out: TopLevelSpec[] = [];
  if (sv.length > 0) {
    out.push(
      chart(
        'Singular value spectra (log–log), by module',
        sv,
        { field: 'i', type: 'quantitative', scale: { type: 'log' }, title: 'index i' },
        { field: 'sigma', type: 'quantitative', scale: { type: 'log' }, title: 'singular value σ' },
        true,
      ),
    );
  }
  if (energy.length > 0) {
    out.push(
      chart(
        'Energy: cumulative Σσ² over the total, against the rank fraction i/K, by module',
        energy,
        { field: 'f', type: 'quantitative', scale: { domain: [0, 1] }, title: 'rank fraction i/K' },
        { field: 'e', type: 'quantitative', scale: { domain: [0, 1] }, title: 'energy kept' },
        false,
      ),
    );
  }
  return out;
}

function byLayerSpec(title: string, field: string, yTitle: string, values: Record<string, unknown>[], modules: string[], mark: 'bar' | 'point'): TopLevelSpec {
  return {
    ...FONT,
    title,
    data: { values },
    // With xOffset the step is each module's bar; points share one column per layer.
    width: { step: mark === 'bar' ? Math.max(3, Math.min(12, Math.floor(96 / modules.length))) : 28 },
    height: 220,
    mark: mark === 'bar' ? { type: 'bar' } : { type: 'point', filled: true, size: 50 },
    encoding: {
      x: { field: 'layer', type: 'ordinal', title: 'layer' },
      ...(mark === 'bar' ? { xOffset: { field: 'module', type: 'nominal', sort: modules } } : {}),
      y: { field, type: 'quantitative', title: yTitle },
      color: { field: 'module', type: 'nominal', sort: modules, title: 'module' },
      tooltip: [{ field: 'name', type: 'nominal' }, { field, type: 'quantitative' }],
    },
  };
}

function heatmapSpec(layered: readonly LayerRecord[], modules: string[]): TopLevelSpec {
  const useAlpha = layered.every((l) => l.spectrum.alpha !== null);
  const metric = useAlpha ? 'alpha' : 'stable rank';
  const values = layered.map((l) => ({ layer: l.layer, module: l.module, v: r5(useAlpha ? (l.spectrum.alpha as number) : l.spectrum.stableRank) }));
  return {
    ...FONT,
    title: `Layer × module heatmap of ${metric}${useAlpha ? '' : ' (some matrices have no alpha)'}`,
    data: { values },
    width: { step: 60 },
    height: { step: 18 },
    encoding: {
      x: { field: 'module', type: 'nominal', sort: modules, title: 'module', axis: { labelAngle: -30 } },
      y: { field: 'layer', type: 'ordinal', title: 'layer' },
    },
    layer: [
      { mark: { type: 'rect' }, encoding: { color: { field: 'v', type: 'quantitative', title: metric, scale: { scheme: 'viridis' } } } },
      { mark: { type: 'text', fontSize: 9 }, encoding: { text: { field: 'v', type: 'quantitative', format: '.3~g' }, color: { value: 'white' } } },
    ],
  };
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Text escaped for HTML. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESC[c]);
}

function num(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined) return '–';
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1e5 || a < 1e-3 ? x.toExponential(digits - 1) : String(+x.toPrecision(digits));
}

/** An HTML table of text cells (escaped). */
export function tableHtml(header: readonly string[], rows: readonly (readonly string[])[], cls = ''): string {
  const th = header.map((h) => `<th>${esc(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function summaryRows(a: ModelAnalysis): string[][] {
  const s = a.summary;
  const rows: string[][] = [
    ['model', a.model],
    ...(a.compare !== null ? [['base model (--compare)', a.compare]] : []),
    ...(a.adapter !== null ? [['adapter', a.adapter]] : []),
    ['backend', a.backend],
    ['mode', a.fast ? `fast (top ${a.settings.fastK} singular values; some values are estimates)` : 'exact'],
    ['tensors / matrices / skipped', `${s.tensors} / ${s.matrices} / ${s.skipped}`],
    ['parameters in matrices', String(s.parameters)],
    ['matrices with an alpha fit', String(s.withAlpha)],
    ['over-trained (α < 2) / under-trained (α > 6)', `${s.overTrained} / ${s.underTrained}`],
    ['mean alpha / mean alpha-weighted', `${num(s.meanAlpha)} / ${num(s.meanAlphaWeighted)}`],
    ['mean stable rank / mean effective rank', `${num(s.meanStableRank)} / ${num(s.meanEffectiveRank)}`],
    ['mean log norm / mean log spectral norm', `${num(s.meanLogNorm)} / ${num(s.meanLogSpectralNorm)}`],
    ['parameters saved at 1% error', `${s.parametersSavedAt1pct}${s.savedUnknown > 0 ? ` (${s.savedUnknown} matrices not counted)` : ''}`],
  ];
  const c = s.comparison;
  if (c !== undefined) {
    rows.push(
      ['compared / changed / unmatched', `${c.compared} / ${c.changed} / ${c.unmatched}`],
      ['mean update rank / mean ‖ΔW‖/‖W‖', `${num(c.meanUpdateRank)} / ${num(c.meanRelativeUpdate)}`],
      ['intruder dimensions / matrices with intruders', `${c.intruders} / ${c.layersWithIntruders}`],
    );
  }
  return rows;
}

function layerRows(a: ModelAnalysis, compared: boolean): { header: string[]; rows: string[][] } {
  const header = ['name', 'module', 'layer', 'shape', 'σmax', 'stable rank', 'eff. rank', 'r90', 'r95', 'r99', 'alpha', 'D', 'warning'];
  if (compared) header.push('Δ rank', '‖ΔW‖/‖W‖', 'intruders');
  const rows = a.layers.map((l) => {
    const s = l.spectrum;
    const r = (x: number | null): string => (x === null ? `>${s.computed}` : String(x));
    const row = [l.name, l.module, l.layer === null ? '' : String(l.layer), l.shape.join('×'), num(s.sigmaMax), num(s.stableRank), num(s.effectiveRank), r(s.energyRanks.r90), r(s.energyRanks.r95), r(s.energyRanks.r99), num(s.alpha, 3), num(s.D, 3), s.warning ?? ''];
    if (compared) {
      const c = l.comparison;
      if (c === undefined) row.push('', '', '');
      else row.push(c.identical ? 'same' : c.update.numericalRank === null ? `>${c.update.computed}` : String(c.update.numericalRank), num(c.relativeUpdate, 3), String(c.intruders.count));
    }
    return row;
  });
  return { header, rows };
}

/** The report pages' style sheet. */
/** A self-contained page (no scripts, no external resources): the title as heading, then `body` (HTML). */
export function htmlPage(title: string, body: string, style = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${esc(title)}</title>
<style>${STYLE}${style}</style>
</head>
<body>
<h1>${esc(title)}</h1>
${body}
</body>
</html>
`;
}

export const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
table.layers td:nth-child(n+3){text-align:right;font-variant-numeric:tabular-nums}
figure{margin:12px 0}.note{color:#666}svg{max-width:100%;height:auto}`;

/**
 * The HTML report of an analysis: one self-contained page (no scripts, no external resources) with
 * the summary, the charts as inline SVG (Vega-Lite rendered by Vega, headless) and a table of every
 * matrix's numbers.
 *
 * @example
 * const a = await analyzeModel('models/tiny');
 * await writeFile('report.html', await renderReport(a, { title: 'tiny' }));
 */
export async function renderReport(result: ModelAnalysis, opts: ReportOptions = {}): Promise<string> {
  const title = opts.title ?? `lowrank analyze ${result.model}`;
  const layers = result.layers;
  const modules = moduleOrder(layers);
  const layered = layers.filter((l) => l.layer !== null);
  const compared = result.compare !== null || result.adapter !== null;
  const notes: string[] = [];

  const specs: { id: string; spec: TopLevelSpec }[] = [];
  const spectra = new Map<string, readonly number[]>();
  for (const l of layers) if (l.spectrum.values !== undefined) spectra.set(l.name, l.spectrum.values);
  if (spectra.size > 0) {
    const [sv, en] = spectrumSpec(layers, spectra, modules);
    if (sv !== undefined) specs.push({ id: 'spectra', spec: sv });
    if (en !== undefined) specs.push({ id: 'energy', spec: en });
  } else {
    notes.push('Singular value spectra and energy curves are left out: the analysis did not keep the singular values (analyzeModel with keepSpectra: true).');
  }
  if (layered.length > 0) {
    const base = layered.map((l) => ({ name: l.name, module: l.module, layer: l.layer }));
    specs.push({ id: 'effective-rank', spec: byLayerSpec('Effective rank per layer', 'effectiveRank', 'effective rank', layered.map((l, i) => ({ ...base[i], effectiveRank: r5(l.spectrum.effectiveRank) })), modules, 'bar') });
    const withAlpha = layered.filter((l) => l.spectrum.alpha !== null);
    if (withAlpha.length > 0) {
      specs.push({ id: 'alpha', spec: byLayerSpec('Power-law alpha per layer (2 ≤ α ≤ 6 is the usual range)', 'alpha', 'alpha', withAlpha.map((l) => ({ name: l.name, module: l.module, layer: l.layer, alpha: r5(l.spectrum.alpha as number) })), modules, 'point') });
    } else {
      notes.push('Alpha per layer is left out: no matrix has the eigenvalues a power-law fit needs.');
    }
    specs.push({ id: 'heatmap', spec: heatmapSpec(layered, modules) });
    if (compared) {
      const withCmp = layered.filter((l) => l.comparison !== undefined);
      if (withCmp.length > 0) {
        specs.push({ id: 'intruders', spec: byLayerSpec('Intruder dimensions per layer', 'intruders', 'intruder dimensions', withCmp.map((l) => ({ name: l.name, module: l.module, layer: l.layer, intruders: l.comparison?.intruders.count ?? 0 })), modules, 'bar') });
      }
    }
  } else {
    notes.push('Per-layer charts are left out: no tensor name has a layer index (layers.N.).');
  }

  const figures: string[] = [];
  for (const { id, spec } of specs) figures.push(`<figure id="${id}">${await svgOf(spec)}</figure>`);
  const { header, rows } = layerRows(result, compared);
  const extra: string[] = [];
  if (result.skipped.length > 0) extra.push(`<h2>Skipped tensors</h2>`, tableHtml(['name', 'dtype', 'shape', 'reason'], result.skipped.map((s) => [s.name, s.dtype, s.shape.join('×'), s.reason])));
  if (result.unmatched.length > 0) extra.push(`<h2>Unmatched</h2>`, tableHtml(['name', 'reason'], result.unmatched.map((u) => [u.name, u.reason])));

  const body = `<h2>Summary</h2>
${tableHtml(['', ''], summaryRows(result))}
<h2>Charts</h2>
${notes.map((n) => `<p class="note">${esc(n)}</p>`).join('\n')}
${figures.join('\n')}
<h2>Per-layer numbers</h2>
${tableHtml(header, rows, 'layers')}
${extra.join('\n')}`;
  return htmlPage(title, body);
}

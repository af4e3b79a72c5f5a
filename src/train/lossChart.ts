/**
 * The training-loss curves of several runs on one chart (Vega-Lite rendered to SVG, as the analysis
 * report does): the chart of `lowrank compare`'s page and of the main job's.
 */
export async function lossChart(runs: readonly { readonly method: string; readonly losses: readonly number[] }[]): Promise<string> {
  // Loaded here: the plotting code is the largest module of the CLI to start up.
  const { FONT, svgOf } = await import('../analysis/report.js');
  const values = runs.flatMap((r) => r.losses.map((loss, i) => ({ method: r.method, step: i + 1, loss: +loss.toPrecision(5) })));
  return svgOf({
    ...FONT,
    title: 'Training loss per step',
    data: { values },
    width: 640,
    height: 320,
    mark: { type: 'line', strokeWidth: 1.5 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'loss', type: 'quantitative', title: 'train loss', scale: { zero: false } },
      color: { field: 'method', type: 'nominal', sort: runs.map((r) => r.method), title: 'method' },
    },
  });
}

/**
 * The main job's comparison page: one self-contained HTML file (no scripts, no network) with the
 * training-loss curves of the methods on one chart, the results table (held-out loss and exact-match
 * accuracy before and after), held-out examples with each model's answer, and links to each
 * method's analysis report and adapter folder.
 */
import { lossChart } from './lossChart.js';
import type { Accuracy, MainJobRow } from './mainJob.js';

/** Held-out examples shown on the page. */
export const EXAMPLES = 8;

const pct = (a: Accuracy): string => `${((100 * a.correct) / a.total).toFixed(1)} % (${a.correct}/${a.total})`;

export async function mainJobHtml(
  r: { rows: readonly MainJobRow[]; heldOut: readonly { prompt: string; completion: string }[]; baseAnswers: readonly string[]; baseAccuracy: Accuracy },
  links: { reports: (row: MainJobRow) => string; adapters: (row: MainJobRow) => string },
): Promise<string> {
  const { esc, htmlPage, tableHtml } = await import('../analysis/report.js');
  const title = 'lowrank start: what the fine-tunes learned';
  const chart = await lossChart(r.rows);
  const results = tableHtml(
    ['method', 'trainable', 'final train loss', 'held-out loss', 'exact match before', 'exact match after', 'time (s)'],
    r.rows.map((x) => [x.method, String(x.trainable), x.trainLoss.toFixed(3), `${x.evalBefore.toFixed(3)} → ${x.evalAfter.toFixed(3)}`, pct(x.accuracyBefore), pct(x.accuracyAfter), x.seconds.toFixed(1)]),
    'results',
  );
  const shown = (answer: string, want: string): string => `${answer === want ? '✓' : '✗'} ${JSON.stringify(answer)}`;
  const examples = tableHtml(
    ['prompt', 'expected', 'base model', ...r.rows.map((x) => x.method)],
    r.heldOut.slice(0, EXAMPLES).map((e, i) => [e.prompt, JSON.stringify(e.completion), shown(r.baseAnswers[i], e.completion), ...r.rows.map((x) => shown(x.answers[i], e.completion))]),
    'examples',
  );
  const items = r.rows.map((x) => `<li>${esc(x.method)}: <a href="${esc(links.reports(x))}">what the fine-tune changed (analysis report)</a>, <a href="${esc(links.adapters(x))}/adapter_config.json">the PEFT adapter</a></li>`).join('\n');
  const body = `<p class="note">The built-in model (a small Llama pretrained on generated sentences and counting) fine-tuned on a task it has never seen: two-number addition ("12 plus 7 is" → " 19."). Exact match: the greedy answer to a held-out sum, up to the end token, equals the expected one. The base model answers ${esc(pct(r.baseAccuracy))} of them.</p>
<figure id="losses">${chart}</figure>
${results}
<h2>Held-out examples</h2>
${examples}
<h2>Reports</h2>
<ul id="reports">
${items}
</ul>`;
  return htmlPage(title, body, '\ntable.results td:nth-child(n+2){text-align:right;font-variant-numeric:tabular-nums}');
}

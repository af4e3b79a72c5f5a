/**
 * `npm run fuzz [-- --cases N --seed S --first I --workers W --no-probes --probe TEXT --findings DIR]`, and
 * `node dist/fuzz/run.js --replay fuzz/findings/<id>` to rerun a saved finding.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { APIS_OF } from './apis.js';
import { DEFAULT_LIMITS, replay, runCampaign, type Summary } from './campaign.js';
import { loadFinding, replayCommand } from './findings.js';
import { isFinding, label } from './outcome.js';
import { PROBES } from './probes.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '1' },
    first: { type: 'string', default: '0' },
    workers: { type: 'string', default: '2' },
    'no-probes': { type: 'boolean', default: false },
    probe: { type: 'string' },
    findings: { type: 'string', default: 'fuzz/findings' },
    replay: { type: 'string' },
    'time-limit': { type: 'string', default: String(DEFAULT_LIMITS.timeMs) },
    'memory-limit': { type: 'string', default: String(DEFAULT_LIMITS.rssBytes) },
  },
});

function int(name: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer, got ${text}`);
    process.exit(2);
  }
  return n;
}

function print(s: Summary): void {
  console.log(`\n${s.probes} probes and ${s.cases} cases in ${s.seconds.toFixed(1)} s (${(s.cases / s.seconds).toFixed(0)} cases/s overall)`);
  for (const [format, st] of Object.entries(s.byFormat)) {
    if (st.inputs === 0) continue;
    const apis = Object.entries(st.outcomes).map(([api, o]) => `${api} {${Object.entries(o).sort(([, a], [, b]) => b - a).map(([k, n]) => `${k}: ${n}`).join(', ')}}`);
    console.log(`  ${format}: ${st.inputs} inputs; ${apis.join('; ')}`);
  }
  console.log('slowest calls:');
  for (const c of s.slowest) console.log(`  ${c.ms.toFixed(0)} ms ${c.api} ${c.name}: ${c.mutations.join('; ').slice(0, 200)}`);
  console.log(`${s.findings.length} findings`);
  for (const f of s.findings) console.log(`  ${f.name} ${f.format} ${f.api}: ${f.problem}${f.dir === undefined ? '' : `\n    replay: ${replayCommand(f.dir)}`}`);
}

const limits = { timeMs: int('time-limit', values['time-limit']), rssBytes: int('memory-limit', values['memory-limit']) };
if (values.replay !== undefined) {
  const { finding, sample } = await loadFinding(values.replay);
  const apis = [finding.api, ...APIS_OF[finding.format].filter((a) => a !== finding.api)];
  console.log(`${finding.name}: ${finding.problem}`);
  const results = await replay(sample, apis, limits);
  for (const r of results) console.log(`  ${r.api}: ${label(r.outcome)} in ${r.ms.toFixed(0)} ms${r.outcome.kind === 'untyped' ? `\n${r.outcome.stack ?? r.outcome.message}` : ''}`);
  process.exitCode = results.some((r) => isFinding(r.outcome)) ? 1 : 0;
} else {
  const probes = values['no-probes'] ? [] : values.probe === undefined ? PROBES : PROBES.filter((p) => p.name.includes(values.probe ?? ''));
  const summary = await runCampaign({
    seed: int('seed', values.seed),
    cases: int('cases', values.cases),
    first: int('first', values.first),
    workers: Math.max(1, int('workers', values.workers)),
    probes,
    limits,
    findingsDir: resolve(values.findings),
    log: (line) => console.log(line),
  });
  print(summary);
  process.exitCode = summary.findings.length > 0 ? 1 : 0;
}

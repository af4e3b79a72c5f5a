/**
 * A fuzz run: the directed probes first, then `cases` mutated seeds spread evenly over the formats,
 * each written to a temporary folder and read by every API of its format in a worker. Used by the
 * CLI (run.ts) and by the bounded slice in the test suite.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { withTempDir } from '../bench/util.js';
import { APIS_OF, type ApiName } from './apis.js';
import { findingId, saveFinding, type Finding } from './findings.js';
import { mutateSample } from './mutate/index.js';
import { isFinding, label, type Outcome } from './outcome.js';
import { createPool, type ApiResult, type Limits, type Pool } from './pool.js';
import { PROBES, type Probe } from './probes.js';
import { caseSeed, rand } from './rand.js';
import { FORMATS, writeSample, type Format, type Sample } from './sample.js';
import { buildSeeds } from './seeds.js';

export const DEFAULT_LIMITS: Limits = { timeMs: 5000, rssBytes: 1.5e9 };

export interface CampaignOptions {
  seed: number;
  cases: number;
  /** The index of the first case (to rerun one case of a run: `first` i, `cases` 1). */
  first?: number;
  /** Which probes run first (default all). */
  probes?: readonly Probe[];
  workers?: number;
  limits?: Limits;
  /** Where findings are saved (not saved when undefined). */
  findingsDir?: string;
  log?: (line: string) => void;
}

export interface FormatStats {
  inputs: number;
  /** API → outcome label → count. */
  outcomes: Record<string, Record<string, number>>;
}

export interface Summary {
  probes: number;
  cases: number;
  seconds: number;
  byFormat: Record<Format, FormatStats>;
  findings: Finding[];
  /** The slowest API calls of the random cases, slowest first. */
  slowest: { name: string; api: ApiName; ms: number; mutations: string[] }[];
}

interface Input {
  sample: Sample;
  name: string;
  seed?: number;
  index?: number;
  mutations?: string[];
  expect?: Partial<Record<ApiName, string>>;
}

/** What is wrong with an outcome, or undefined when it is fine (for a probe: also what it expected). */
function problemOf(o: Outcome, expected: string | undefined): string | undefined {
  if (isFinding(o)) {
    if (o.kind === 'untyped') return `${o.code ?? o.name}: ${o.message.slice(0, 300)}`;
    if (o.kind === 'timeout') return `still running after ${o.ms} ms`;
    if (o.kind === 'memory') return `resident memory grew by ${(o.rssBytes / 2 ** 20).toFixed(0)} MiB`;
    if (o.kind === 'crash') return `worker died: ${o.message}`;
  }
  if (expected !== undefined && label(o) !== expected) return `expected ${expected}, got ${label(o)}`;
  return undefined;
}

/** Runs the probes, then the cases, each input written under a temporary folder removed at the end (also on Ctrl-C). */
export async function runCampaign(opts: CampaignOptions): Promise<Summary> {
  return withTempDir('lowrank-fuzz-', (tmp) => campaignIn(tmp, opts));
}

async function campaignIn(tmp: string, opts: CampaignOptions): Promise<Summary> {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const log = opts.log ?? (() => {});
  const started = performance.now();
  const byFormat = Object.fromEntries(FORMATS.map((f) => [f, { inputs: 0, outcomes: {} }])) as Record<Format, FormatStats>;
  const findings = new Map<string, Finding>();
  const suspects: { input: Input; results: ApiResult[] }[] = [];

  let pool: Pool = createPool(opts.workers ?? 2, limits);
  let counter = 0;
  const slowest: Summary['slowest'] = [];

  const record = async (input: Input, results: ApiResult[], final: boolean): Promise<void> => {
    const stats = byFormat[input.sample.format];
    // A memory trip with several workers busy may be another case's doing: rerun alone first.
    if (!final && results.some((r) => r.outcome.kind === 'memory')) {
      suspects.push({ input, results });
      return;
    }
    stats.inputs++;
    for (const { api, outcome } of results) {
      const per = (stats.outcomes[api] ??= {});
      per[label(outcome)] = (per[label(outcome)] ?? 0) + 1;
      const problem = problemOf(outcome, input.expect?.[api]);
      if (problem === undefined) continue;
      const id = findingId(api, input.sample);
      if (findings.has(id)) continue;
      const f: Finding = { id, name: input.name, format: input.sample.format, api, outcome, problem, seed: input.seed, index: input.index, mutations: input.mutations };
      if (opts.findingsDir !== undefined) f.dir = await saveFinding(opts.findingsDir, f, input.sample);
      findings.set(id, f);
      log(`FINDING ${input.name} ${api}: ${problem}${f.dir === undefined ? '' : ` (saved in ${f.dir})`}`);
    }
  };
  const runInput = async (p: Pool, input: Input): Promise<ApiResult[]> => {
    const dir = join(tmp, String(counter++));
    try {
      return await p.run(await writeSample(input.sample, dir), APIS_OF[input.sample.format]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  try {
    // Probes one at a time: they are the large inputs, and memory is then theirs alone.
    for (const probe of opts.probes ?? PROBES) {
      const input: Input = { sample: await probe.build(), name: `probe: ${probe.name}`, expect: probe.expect };
      const t0 = performance.now();
      const results = await runInput(pool, input);
      await record(input, results, true);
      log(`probe ${probe.name}: ${results.map((r) => `${r.api} ${label(r.outcome)} ${r.ms.toFixed(0)} ms`).join(', ')} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
    const probeCount = (opts.probes ?? PROBES).length;

    const seeds = await buildSeeds();
    const seedsOf = new Map(FORMATS.map((f) => [f, seeds.filter((s) => s.format === f)]));
    const donors = seeds.flatMap((s) => Object.values(s.files));
    let next = opts.first ?? 0;
    const end = next + opts.cases;
    let done = 0;
    let lastLog = performance.now();
    const lane = async (p: Pool): Promise<void> => {
      while (next < end) {
        const index = next++;
        const r = rand(caseSeed(opts.seed, index));
        const format = FORMATS[index % FORMATS.length];
        const m = mutateSample(r, r.pick(seedsOf.get(format) ?? []), donors);
        const input: Input = { sample: m.sample, name: `case ${index} of seed ${opts.seed}`, seed: opts.seed, index, mutations: m.mutations };
        const results = await runInput(p, input);
        for (const { api, ms } of results) if (slowest.length < 10 || ms > slowest[slowest.length - 1].ms) {
          slowest.push({ name: input.name, api, ms, mutations: m.mutations });
          slowest.sort((a, b) => b.ms - a.ms).splice(10);
        }
        await record(input, results, false);
        done++;
        if (performance.now() - lastLog > 5000) {
          lastLog = performance.now();
          log(`${done}/${opts.cases} cases, ${findings.size} findings, ${(done / ((lastLog - started) / 1000)).toFixed(0)} cases/s overall`);
        }
      }
    };
    const casesStart = performance.now();
    await Promise.all(Array.from({ length: opts.workers ?? 2 }, () => lane(pool)));
    log(`${opts.cases} cases in ${((performance.now() - casesStart) / 1000).toFixed(1)} s`);
    // Memory suspects again, alone, in a fresh worker.
    await pool.close();
    pool = createPool(1, limits);
    for (const s of suspects) await record(s.input, await runInput(pool, s.input), true);
    return { probes: probeCount, cases: opts.cases, seconds: (performance.now() - started) / 1000, byFormat, findings: [...findings.values()], slowest };
  } finally {
    await pool.close();
  }
}

/** Reruns a saved finding's input through its API (or every API of its format). */
export async function replay(sample: Sample, apis: readonly ApiName[], limits = DEFAULT_LIMITS): Promise<ApiResult[]> {
  return withTempDir('lowrank-fuzz-replay-', async (tmp) => {
    const pool = createPool(1, limits);
    try {
      return await pool.run(await writeSample(sample, join(tmp, 'input')), apis);
    } finally {
      await pool.close();
    }
  });
}

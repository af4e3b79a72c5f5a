/**
 * The bounded slice of the fuzz suite (issue 16) that every test run does: the directed limit probes,
 * then a few thousand mutated inputs of every format, each read by every read API in a worker (60 s
 * per call as a hang guard, 1.5 GB resident). A finding is saved under fuzz/findings/ with the
 * command that replays it. `npm run fuzz` runs the same with more cases and the 5 s limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DEFAULT_LIMITS, runCampaign, type Summary } from '../../fuzz/campaign.js';
import { replayCommand, type Finding } from '../../fuzz/findings.js';
import { PROBES } from '../../fuzz/probes.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const FINDINGS = join(ROOT, 'fuzz', 'findings');
const CASES = 1500;
const SEED = 16;

/**
 * In a test run, time is a hang guard, not a speed target (speed is for `npm run fuzz`, with the
 * issue's 5 s, and the benchmarks): a call past 60 s or over the memory limit is a finding.
 */
const LIMITS = { ...DEFAULT_LIMITS, timeMs: 60_000 };

const describeFinding = (f: Finding): string => `${f.name} ${f.api}: ${f.problem}\n    ${f.mutations?.join('; ') ?? ''}\n    replay: ${f.dir === undefined ? '(not saved)' : replayCommand(f.dir)}`;

let summary: Summary | undefined;
const campaign = async (): Promise<Summary> => (summary ??= await runCampaign({ seed: SEED, cases: CASES, findingsDir: FINDINGS, limits: LIMITS }));

test('directed limit probes: hostile patterns, thousands of keys, huge headers, bombs, malformed JSON', async (t) => {
  const s = await campaign();
  for (const p of PROBES) {
    await t.test(p.name, () => {
      const found = s.findings.filter((f) => f.name === `probe: ${p.name}`);
      assert.deepEqual(found.map(describeFinding), []);
    });
  }
});

test(`${CASES} mutated inputs of every format end in success or a typed LowrankError, within the limits`, async () => {
  const s = await campaign();
  const found = s.findings.filter((f) => !f.name.startsWith('probe: '));
  assert.equal(found.length, 0, `${found.length} findings:\n${found.map(describeFinding).join('\n')}`);
  // Every format was fuzzed, and each ended in a typed error at least once (mutations reach the checks).
  for (const [format, st] of Object.entries(s.byFormat)) {
    assert.ok(st.inputs >= CASES / 8, `${format}: ${st.inputs} inputs`);
    const ends = Object.values(st.outcomes).flatMap((o) => Object.entries(o));
    assert.ok(ends.some(([k]) => k.startsWith('E_')), `${format}: no typed error at all: ${JSON.stringify(st.outcomes)}`);
  }
});

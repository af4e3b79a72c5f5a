/**
 * Regression tests of the fuzz suite's findings (issue 16): each saved input in test/fixtures/fuzz/
 * (its finding.json says what it was: API, seed, case, what went wrong) is replayed through every
 * read API of its format, under the fuzz limits, and must end in success or a typed error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_LIMITS, replay } from '../../fuzz/campaign.js';
import { loadFinding } from '../../fuzz/findings.js';
import { APIS_OF } from '../../fuzz/apis.js';
import { isFinding } from '../../fuzz/outcome.js';

const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'fuzz');

for (const id of await readdir(FIXTURES)) {
  const { finding, sample } = await loadFinding(join(FIXTURES, id));
  test(`fuzz finding ${id} (${finding.name}, ${finding.api}: ${finding.problem}) now ends in success or a typed error`, async () => {
    // 60 s: a hang guard (two of these inputs ran for seconds); the 5 s limit is `npm run fuzz`'s.
    const results = await replay(sample, APIS_OF[sample.format], { ...DEFAULT_LIMITS, timeMs: 60_000 });
    assert.ok(results.length > 0);
    for (const r of results) assert.ok(!isFinding(r.outcome), `${r.api}: ${JSON.stringify(r.outcome)}`);
  });
}

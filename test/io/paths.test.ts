/**
 * src/io/paths.ts against Node's own POSIX path module (`node:path`'s `posix`) as the reference:
 * a table of tricky inputs, then a few thousand seeded random paths. The one documented difference
 * — normalize (and so join) drops a trailing '/', which Node keeps — is applied to Node's answer
 * before comparing (and checked on its own); every other answer must be Node's exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { posix as P } from 'node:path';
import { basename, dirname, join, normalize, relative, resolve, sep } from '../../src/io/paths.js';
import { fs, useFileSystem } from '../../src/io/fs.js';
import { nodeFileSystem } from '../../src/io/nodeFs.js';
import { memoryFileSystem } from '../../src/io/memoryFs.js';
import { rng } from '../../src/core/rng.js';

/** Node's answer less a trailing '/' (but '/' itself stays): what normalize and join document. */
const noTrailing = (s: string): string => (s.length > 1 && s.endsWith('/') ? s.slice(0, -1) : s);

const SAMPLES = [
  '', '.', '..', '/', '//', '///', './', '../', './/', '..//', './.', '../..', '../../', '../../a', '../a/../..',
  '/..', '/../..', '/../a', '/./', '/.', 'a', 'a/', 'a//', 'a/.', 'a/..', 'a/../', 'a/b', 'a//b', 'a///b/', 'a/b//',
  '/a', '//a', '///a', '/a/', '/a//', '/a/b/', '/a//b', 'a/./b', 'a/../b', 'a/b/../..', 'a/b/../../..', './a', '././a/./',
  '.hidden', '/.hidden/x', 'a/.hidden/', 'a..b', 'a/..b', 'a/b..', '..a', '...', 'a/.../b', '.../..', 'x.y', 'x.y/z',
  'ünï/cødé', '/日本/語/..', 'emoji/😀/', 'a b/c d', ' ', 'a\\b', 'a\\..\\b', '/a/b/c/../../../../d', '-', '~/x',
];

/** Each input (or argument list) whose answer differs from the reference, with both answers. */
function mismatches<A extends unknown[]>(cases: readonly A[], ours: (...a: A) => string, theirs: (...a: A) => string): string[] {
  const out: string[] = [];
  for (const args of cases) {
    const [got, want] = [ours(...args), theirs(...args)];
    if (got !== want) out.push(`${JSON.stringify(args)}: got ${JSON.stringify(got)}, Node ${JSON.stringify(want)}`);
  }
  return out;
}

const pairs: [string, string][] = SAMPLES.flatMap((a) => SAMPLES.map((b): [string, string] => [a, b]));
const TRIPLE_PARTS = ['', '.', '..', '/', 'a/', '/b', '../c', 'x.y//', '語'];
const triples: [string, string, string][] = TRIPLE_PARTS.flatMap((a) => TRIPLE_PARTS.flatMap((b) => TRIPLE_PARTS.map((c): [string, string, string] => [a, b, c])));

test('the reference is the disk: relative paths resolve against process.cwd(), as Node\'s do', () => {
  assert.equal(fs(), nodeFileSystem);
  assert.equal(fs().cwd(), process.cwd());
  assert.equal(sep, P.sep);
});

test('normalize matches Node on the table (less a trailing slash)', () => {
  assert.deepEqual(mismatches(SAMPLES.map((s) => [s] as [string]), normalize, (s) => noTrailing(P.normalize(s))), []);
});

test('normalize and join drop the trailing slash Node keeps (the documented difference), nothing else', () => {
  // Node keeps it: the reference really does differ here, so the tables above are not vacuous.
  assert.equal(P.normalize('a/'), 'a/');
  assert.equal(P.join('a', 'b/'), 'a/b/');
  assert.equal(normalize('a/'), 'a');
  assert.equal(normalize('a/b//'), 'a/b');
  assert.equal(normalize('./'), '.');
  assert.equal(normalize('../'), '..');
  assert.equal(normalize('/'), '/');
  assert.equal(normalize('//'), '/');
  assert.equal(join('a', 'b/'), 'a/b');
  assert.equal(join('/', ''), '/');
});

test('join matches Node on every pair and triple of the table, and with no argument (less a trailing slash)', () => {
  assert.deepEqual(mismatches(pairs, join, (a, b) => noTrailing(P.join(a, b))), []);
  assert.deepEqual(mismatches(triples, join, (a, b, c) => noTrailing(P.join(a, b, c))), []);
  assert.deepEqual(mismatches(SAMPLES.map((s) => [s] as [string]), join, (s) => noTrailing(P.join(s))), []);
  assert.equal(join(), P.join());
});

test('resolve matches Node on every pair and triple of the table (absolute after relative restarts), and with no argument', () => {
  assert.deepEqual(mismatches(SAMPLES.map((s) => [s] as [string]), resolve, (s) => P.resolve(s)), []);
  assert.deepEqual(mismatches(pairs, resolve, (a, b) => P.resolve(a, b)), []);
  assert.deepEqual(mismatches(triples, resolve, (a, b, c) => P.resolve(a, b, c)), []);
  assert.equal(resolve(), P.resolve());
  // An absolute part after relative ones starts the path over.
  assert.equal(resolve('a/b', '/c', 'd'), P.resolve('a/b', '/c', 'd'));
  assert.equal(resolve('a/b', '/c', 'd'), '/c/d');
});

test('basename matches Node on the table', () => {
  assert.deepEqual(mismatches(SAMPLES.map((s) => [s] as [string]), basename, (s) => P.basename(s)), []);
});

test('dirname matches Node on the table', () => {
  assert.deepEqual(mismatches(SAMPLES.map((s) => [s] as [string]), dirname, (s) => P.dirname(s)), []);
});

test('relative matches Node on every pair of the table', () => {
  assert.deepEqual(mismatches(pairs, relative, (a, b) => P.relative(a, b)), []);
});

test('with a memory file system installed, relative paths resolve against its cwd (/), as Node\'s resolve from /', (t) => {
  const before = useFileSystem(memoryFileSystem());
  t.after(() => {
    if (before !== undefined) useFileSystem(before);
  });
  assert.equal(fs().cwd(), '/');
  assert.deepEqual(mismatches(SAMPLES.map((s) => [s] as [string]), resolve, (s) => P.resolve('/', s)), []);
  assert.deepEqual(mismatches(pairs, resolve, (a, b) => P.resolve('/', a, b)), []);
  assert.deepEqual(mismatches(pairs, relative, (a, b) => P.relative(P.resolve('/', a), P.resolve('/', b))), []);
});

// ---------------------------------------------------------------------------------------------
// Seeded random paths over a small alphabet of segments.

const ALPHABET = ['a', 'b', '..', '.', '', 'x.y'];

function randomPath(g: ReturnType<typeof rng>): string {
  const n = g.uint32() % 7;
  const segs = Array.from({ length: n }, () => ALPHABET[g.uint32() % ALPHABET.length]);
  const lead = g.uint32() % 3 === 0 ? '/' : '';
  const trail = g.uint32() % 5 === 0 ? '/' : '';
  return lead + segs.join('/') + trail;
}

const CASES = 3000;
const g = rng(20240611);
const random = Array.from({ length: CASES }, () => [randomPath(g), randomPath(g), randomPath(g)] as [string, string, string]);

test('the random paths cover the tricky shapes (so the property tests below are not vacuous)', () => {
  const flat = random.flat();
  for (const shape of [/^$/, /^\//, /\/$/, /\/\//, /(^|\/)\.\.(\/|$)/, /(^|\/)\.(\/|$)/, /x\.y/]) {
    assert.ok(flat.some((p) => shape.test(p)), `no random path matches ${shape}`);
  }
  assert.ok(new Set(flat).size > 1000, 'too few distinct random paths');
});

test(`property: ${CASES} seeded random paths give Node's answer for every function`, async (t) => {
  /** The first few mismatches and how many there were. */
  const check = <A extends unknown[]>(cases: readonly A[], ours: (...a: A) => string, theirs: (...a: A) => string): void => {
    const bad = mismatches(cases, ours, theirs);
    assert.deepEqual(bad.slice(0, 8), [], `${bad.length} of ${cases.length} differ`);
  };
  const one = random.map(([a]) => [a] as [string]);
  const two = random.map(([a, b]) => [a, b] as [string, string]);
  await t.test('normalize (less a trailing slash)', () => check(one, normalize, (a) => noTrailing(P.normalize(a))));
  await t.test('join of two and of three (less a trailing slash)', () => {
    check(two, join, (a, b) => noTrailing(P.join(a, b)));
    check(random, join, (a, b, c) => noTrailing(P.join(a, b, c)));
  });
  await t.test('resolve of one, two and three', () => {
    check(one, resolve, (a) => P.resolve(a));
    check(two, resolve, (a, b) => P.resolve(a, b));
    check(random, resolve, (a, b, c) => P.resolve(a, b, c));
  });
  await t.test('basename', () => check(one, basename, (a) => P.basename(a)));
  await t.test('dirname', () => check(one, dirname, (a) => P.dirname(a)));
  await t.test('relative', () => check(two, relative, (a, b) => P.relative(a, b)));
});

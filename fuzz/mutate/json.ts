/**
 * Structure-aware JSON mutations: a node anywhere in the document is replaced by a hostile value,
 * deleted, renamed, duplicated or wrapped; the text is then written back, sometimes pretty, with a
 * duplicate key, or with a verbatim piece no JS value stringifies to (1e999, 100,000 brackets).
 */
import type { Rand } from '../rand.js';

/** Text emitted verbatim in place of a value. */
export class Raw {
  constructor(readonly text: string) {}
}

export type Json = null | boolean | number | string | Raw | Json[] | { [k: string]: Json };
type Path = (string | number)[];

/** Regexes PEFT-style patterns are fed: catastrophic backtracking, invalid, engine-specific, huge. */
export const HOSTILE_PATTERNS = [
  '(.*)*x', '(a+)+$', '(a|a)*b', '(.*a){20}', '((a*)*)*b', '(x+x+)+y', '([a-z]+)*$', '(.*\\.)*(.*)*q_proj',
  '[', '(', ')', '*', 'a{2,1}', '\\', '(?<=a)b', '(?=x)', '(?!x)', '\\1', '(a)\\1', '(?P<n>a)(?P=n)', '\\p{Zzz}',
  'a{1000000}', '(((((((((((((((((((((a)))))))))))))))))))))', 'x'.repeat(10000), '.'.repeat(5000) + '*', '', '.*', '^$', '[^.]*',
  'q_proj', 'layers', '\u0000', '\ud800', 'é+',
];
export const SMALL_PATTERNS = HOSTILE_PATTERNS.filter((x) => x.length < 100);

const HOSTILE_STRINGS: string[] = ['', ' ', '\u0000', '__proto__', 'constructor', 'prototype', '../x', '/etc/passwd', 'a/b', '.', '..', '\ud800', '💥', 'x'.repeat(70000), 'LORA', 'LOWRANK', 'VERA', 'F32', 'BF16', 'C64', 'none', 'all-linear', 'true'];
const SMALL_STRINGS = HOSTILE_STRINGS.filter((x) => x.length < 100);
const HOSTILE_NUMBERS = [-1, 0, 1, 1.5, -0.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 1e15, 1e308, -1e308, 5e-324, 0.1, 65536, 1_700_000, 100_000_000];
const HOSTILE_RAW = ['1e999', '-1e999', '-0', '123456789012345678901234567890', '0.00000000000000000000000000001', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, '{"__proto__":{"polluted":1}}', '"\\ud800"', '"\\u0000"'];

/**
 * A value chosen to break assumptions: boundary numbers, odd strings, hostile regexes, and (when
 * `big`) deep or long containers. Generators of many values ask for small ones, so a case stays a
 * few MB at most.
 */
export function hostileValue(r: Rand, big = true): Json {
  switch (r.below(big ? 8 : 5)) {
    case 0: return r.pick(HOSTILE_NUMBERS);
    case 1: return r.pick(big ? HOSTILE_STRINGS : SMALL_STRINGS);
    case 2: return r.pick(big ? HOSTILE_PATTERNS : SMALL_PATTERNS);
    case 3: return r.pick<Json>([null, true, false, [], {}, [null], { '': null }]);
    case 4: return r.below(2) === 0 ? -r.below(1000) : r.below(2 ** 31);
    case 5: return new Raw(r.pick(HOSTILE_RAW));
    case 6: return Array.from({ length: r.pick([2, 100, 70_000]) }, (_, i) => (r.chance(0.5) ? i : `m${i}`));
    default: return Object.fromEntries(Array.from({ length: r.pick([1, 100, 20_000]) }, (_, i) => [r.chance(0.1) ? r.pick(SMALL_PATTERNS) : `k${i}`, i]));
  }
}

function nodes(v: Json, path: Path = [], out: Path[] = []): Path[] {
  out.push(path);
  if (Array.isArray(v)) v.forEach((x, i) => nodes(x, [...path, i], out));
  else if (v !== null && typeof v === 'object' && !(v instanceof Raw)) for (const [k, x] of Object.entries(v)) nodes(x, [...path, k], out);
  return out;
}

type Container = Json[] | { [k: string]: Json };

function at(v: Json, path: Path): Json {
  let cur = v;
  for (const k of path) cur = (cur as Record<string | number, Json>)[k];
  return cur;
}

/** A deep copy (Raw pieces shared: they are immutable). */
export function copyJson(v: Json): Json {
  if (Array.isArray(v)) return v.map(copyJson);
  if (v !== null && typeof v === 'object' && !(v instanceof Raw)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copyJson(x)]));
  return v;
}

/** One structural change somewhere in `doc` (a copy is changed and returned). */
export function mutateJson(r: Rand, doc: Json, value: (r: Rand) => Json = hostileValue): { doc: Json; what: string } {
  const root = copyJson(doc);
  const paths = nodes(root);
  const path = r.pick(paths);
  const where = path.join('.') || '(root)';
  if (path.length === 0) return { doc: value(r), what: 'replace the whole document' };
  const parent = at(root, path.slice(0, -1)) as Container;
  const key = path[path.length - 1];
  switch (r.below(6)) {
    case 0:
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key as string];
      return { doc: root, what: `delete ${where}` };
    case 1:
      if (!Array.isArray(parent)) {
        const renamed = Object.fromEntries(Object.entries(parent).map(([k, x]) => [k === key ? String(r.chance(0.5) ? r.pick(HOSTILE_STRINGS) : r.pick(HOSTILE_PATTERNS)) : k, x]));
        for (const k of Object.keys(parent)) delete parent[k];
        Object.assign(parent, renamed);
        return { doc: root, what: `rename ${where}` };
      }
      parent.push(...Array.from({ length: r.pick([1, 10, 1000]) }, () => copyJson(parent[key as number])));
      return { doc: root, what: `repeat element ${where}` };
    case 2:
      (parent as Record<string | number, Json>)[key] = [copyJson(at(root, path))];
      return { doc: root, what: `wrap ${where} in a list` };
    case 3: {
      const other = r.pick(paths);
      (parent as Record<string | number, Json>)[key] = copyJson(at(root, other));
      return { doc: root, what: `copy ${other.join('.') || '(root)'} over ${where}` };
    }
    default:
      (parent as Record<string | number, Json>)[key] = value(r);
      return { doc: root, what: `replace ${where}` };
  }
}

/** JSON text of `v` (Raw pieces verbatim), optionally pretty and with one object's first key written twice. */
export function stringify(v: Json, opts: { pretty?: boolean; duplicateIn?: number } = {}): string {
  let objects = 0;
  const nl = opts.pretty === true ? '\n' : '';
  const go = (x: Json, indent: string): string => {
    if (x instanceof Raw) return x.text;
    if (x === null || typeof x !== 'object') return JSON.stringify(x);
    const inner = opts.pretty === true ? `${indent}  ` : '';
    if (Array.isArray(x)) return x.length === 0 ? '[]' : `[${nl}${x.map((e) => inner + go(e, inner)).join(`,${nl}`)}${nl}${indent}]`;
    const entries = Object.entries(x);
    const dup = objects++ === opts.duplicateIn && entries.length > 0;
    const parts = entries.map(([k, e]) => `${inner}${JSON.stringify(k)}:${go(e, inner)}`);
    if (dup) parts.push(parts[0]);
    return parts.length === 0 ? '{}' : `{${nl}${parts.join(`,${nl}`)}${nl}${indent}}`;
  };
  return go(v, '');
}

/** Random formatting of a mutated document: compact or pretty, sometimes with a duplicate key. */
export function writeJson(r: Rand, doc: Json): string {
  return stringify(doc, { pretty: r.chance(0.3), duplicateIn: r.chance(0.15) ? r.below(8) : undefined });
}

/** Parses JSON text into a mutable document, or undefined when it is not JSON. */
export function parseJson(text: string): Json | undefined {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}

/**
 * Regular expressions that come from users and files (`--targets`, PEFT config patterns) run on
 * RE2 (re2js): linear time in the text's length whatever the pattern, so a catastrophically
 * backtracking one such as `(.*)*x` cannot hang lowrank. RE2 reads the syntax of JavaScript's and
 * Python's regexes except lookarounds and backreferences, which are refused when compiled.
 */
import { RE2JS } from 're2js';
import { LowrankError, type ErrorCode, type ErrorContext } from './errors.js';

export interface Pattern {
  readonly source: string;
  /** Whether it matches somewhere in `text` (RegExp.test, Python's re.search). */
  test(text: string): boolean;
  /** Whether it matches all of `text` (Python's re.fullmatch). */
  whole(text: string): boolean;
  /** The first match in `text`: the whole match then each group (null where a group took no part), or null. */
  exec(text: string): readonly (string | null)[] | null;
}

const compiled = new Map<string, Pattern>();
/** Compiled patterns kept at most (the cache starts over past it: a long process opens many configs). */
const MAX_CACHED = 4096;

/**
 * Compiles `source` on RE2 (once per source). A pattern RE2 cannot read is a `code` error (E_USAGE
 * for a user's, E_FORMAT for a file's) that calls it `what` (e.g. "targets '(a'", "pattern 'x'").
 */
export function compilePattern(source: string, what = `pattern '${source.slice(0, 100)}'`, code: ErrorCode = 'E_USAGE', ctx: ErrorContext = {}): Pattern {
  let p = compiled.get(source);
  if (p === undefined) {
    let re: RE2JS;
    try {
      re = RE2JS.compile(source);
    } catch (e) {
      const why = e instanceof Error ? e.message.replace(/^error parsing regexp: /, '') : String(e);
      throw new LowrankError(code, `${what} is not a valid regular expression for a linear-time engine (RE2: ${why.slice(0, 100)})`, ctx);
    }
    const exec = (text: string): (string | null)[] | null => {
      const m = re.matcher(text);
      return m.find() ? Array.from({ length: m.groupCount() + 1 }, (_, i) => m.group(i)) : null;
    };
    p = { source, test: (text) => re.matcher(text).find(), whole: (text) => re.matcher(text).matches(), exec };
    if (compiled.size >= MAX_CACHED) compiled.clear();
    compiled.set(source, p);
  }
  return p;
}

/**
 * A pattern from a library caller: a string is compiled on RE2; a RegExp is the caller's own code
 * and keeps JavaScript's engine (without the stateful g and y flags).
 */
export function patternOf(p: RegExp | Pattern | string): Pattern {
  if (typeof p === 'string') return compilePattern(p, `targets '${p.slice(0, 100)}'`);
  if (!(p instanceof RegExp)) return p;
  const some = new RegExp(p.source, p.flags.replace(/[gy]/g, ''));
  const all = new RegExp(`^(?:${p.source})$`, p.flags.replace(/[gy]/g, ''));
  const exec = (text: string): (string | null)[] | null => {
    const m = some.exec(text);
    return m === null ? null : Array.from(m, (g) => g ?? null);
  };
  return { source: p.source, test: (text) => some.test(text), whole: (text) => all.test(text), exec };
}

/**
 * A method's own options: each method file declares them (kind, default, help, bounds, the PEFT
 * config field they map to), and the CLI's flags, help and validation, the config written with the
 * adapter and the typed values the method reads all come from that one declaration.
 */
import { LowrankError, brief } from '../core/errors.js';

interface Common {
  readonly help: string;
  /** The adapter_config.json field this option is saved under; default: its own name. */
  readonly peft?: string;
}
/** An integer option, bounds inclusive. */
export interface IntOption extends Common {
  readonly kind: 'int';
  readonly default: number;
  readonly min?: number;
  readonly max?: number;
}
/** A real option, bounds inclusive (`above`: strictly greater). */
export interface NumberOption extends Common {
  readonly kind: 'number';
  readonly default: number;
  readonly min?: number;
  readonly above?: number;
  readonly max?: number;
}
export interface BoolOption extends Common {
  readonly kind: 'bool';
  readonly default: boolean;
}
/** One of a few names. */
export interface ChoiceOption extends Common {
  readonly kind: 'choice';
  readonly default: string;
  readonly choices: readonly string[];
}
export type OptionSpec = IntOption | NumberOption | BoolOption | ChoiceOption;
/** A method's declared options by name. */
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;
export type OptionValue = number | boolean | string;
/** Option values by name, as given (defaults are filled by {@link configOf}). */
export type OptionValues = Readonly<Record<string, OptionValue>>;

/** The typed values of a declaration: numbers for int/number, booleans, strings for choices. */
export type ConfigOf<O extends OptionSpecs> = { readonly [K in keyof O]: O[K] extends BoolOption ? boolean : O[K] extends ChoiceOption ? string : number };

/** Declares a method's options (an identity that keeps the literal types). */
export function defineOptions<const O extends OptionSpecs>(specs: O): O {
  return specs;
}

/** One value checked against its declaration; E_USAGE naming the method and option. */
function checked(method: string, name: string, spec: OptionSpec, v: OptionValue): OptionValue {
  const bad = (what: string): never => {
    throw new LowrankError('E_USAGE', `${method} option ${name} must be ${what}, got ${brief(v)}`);
  };
  switch (spec.kind) {
    case 'bool':
      return typeof v === 'boolean' ? v : bad('true or false');
    case 'choice':
      return typeof v === 'string' && spec.choices.includes(v) ? v : bad(`one of ${spec.choices.join(', ')}`);
    case 'int':
    case 'number': {
      const lo = spec.min === undefined ? '' : ` ≥ ${spec.min}`;
      const above = spec.kind === 'number' && spec.above !== undefined ? ` > ${spec.above}` : '';
      const hi = spec.max === undefined ? '' : ` ≤ ${spec.max}`;
      const what = `${spec.kind === 'int' ? 'an integer' : 'a number'}${lo}${above}${hi}`;
      if (typeof v !== 'number' || !Number.isFinite(v) || (spec.kind === 'int' && !Number.isSafeInteger(v))) return bad(what);
      if ((spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max)) return bad(what);
      if (spec.kind === 'number' && spec.above !== undefined && !(v > spec.above)) return bad(what);
      return v;
    }
  }
}

/** The full typed config: every declared option, given or default, each checked. Unknown names are an E_USAGE error. */
export function configOf<O extends OptionSpecs>(method: string, specs: O, given: OptionValues = {}): ConfigOf<O> {
  for (const name of Object.keys(given)) {
    if (!Object.hasOwn(specs, name)) {
      const known = Object.keys(specs);
      throw new LowrankError('E_USAGE', `${method} has no option '${name}' (${known.length === 0 ? 'it takes none' : `its options: ${known.join(', ')}`})`);
    }
  }
  const out: Record<string, OptionValue> = {};
  for (const [name, spec] of Object.entries(specs)) out[name] = checked(method, name, spec, Object.hasOwn(given, name) ? given[name] : spec.default);
  return out as ConfigOf<O>; // every key of O filled with a value of its declared kind, checked above
}

/**
 * Parses `key=value` texts (the CLI's `--set`) by the declaration: integers, numbers, true/false,
 * choice names. E_USAGE for unknown keys, malformed pairs and values that do not parse.
 */
export function parseOptionTexts(method: string, specs: OptionSpecs, texts: readonly string[]): Record<string, OptionValue> {
  const out: Record<string, OptionValue> = {};
  for (const text of texts) {
    const eq = text.indexOf('=');
    if (eq <= 0) throw new LowrankError('E_USAGE', `--set takes key=value, got '${text}'`);
    const [name, raw] = [text.slice(0, eq).trim(), text.slice(eq + 1).trim()];
    if (!Object.hasOwn(specs, name)) configOf(method, specs, { [name]: raw });
    const spec = specs[name];
    if (spec.kind === 'bool') {
      if (raw !== 'true' && raw !== 'false') throw new LowrankError('E_USAGE', `${method} option ${name} must be true or false, got '${raw}'`);
      out[name] = raw === 'true';
    } else if (spec.kind === 'choice') out[name] = raw;
    else {
      const n = raw === '' ? NaN : Number(raw);
      if (!Number.isFinite(n)) throw new LowrankError('E_USAGE', `${method} option ${name} must be a number, got '${raw}'`);
      out[name] = n;
    }
    checked(method, name, spec, out[name]);
  }
  return out;
}

/** The values under their PEFT config field names. */
export function peftFields(specs: OptionSpecs, values: OptionValues): Record<string, OptionValue> {
  return Object.fromEntries(Object.entries(specs).map(([name, spec]) => [spec.peft ?? name, values[name]]));
}

/** The declared options read back from a config's fields (those present), by option name. */
export function fromPeftFields(specs: OptionSpecs, config: Readonly<Record<string, unknown>>): Record<string, OptionValue> {
  const out: Record<string, OptionValue> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const v = config[spec.peft ?? name];
    if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') out[name] = v;
  }
  return out;
}

/** One help line per option: `name=<kind> (default d) help`. */
export function optionHelp(specs: OptionSpecs): string[] {
  return Object.entries(specs).map(([name, s]) => {
    const kind = s.kind === 'choice' ? s.choices.join('|') : s.kind;
    return `${name}=<${kind}> (default ${String(s.default)}) ${s.help}`;
  });
}

/**
 * The method options of `init`, `train`, `params` and `compare`: `--set key=value` (repeatable),
 * parsed and checked by the method's own declaration, and a help section listing every method's
 * options, built from the same declarations.
 */
import type { Command } from 'commander';
import { ALL_METHODS } from '../methods/all.js';
import { getMethod } from '../methods/registry.js';
import { LowrankError } from '../core/errors.js';
import { optionHelp, parseOptionTexts, type OptionValue } from '../methods/options.js';

/** Adds `--set` and the options section of the help; `perMethod`: `--set method.key=value` (compare). */
export function withMethodOptions(cmd: Command, perMethod = false): Command {
  const lines = ALL_METHODS.filter((m) => m.options !== undefined && Object.keys(m.options).length > 0).flatMap((m) => [`  ${m.name}:`, ...optionHelp(m.options ?? {}).map((l) => `    ${l}`)]);
  return cmd
    .option(
      perMethod ? '--set <method.key=value>' : '--set <key=value>',
      perMethod ? "an option of one method (repeat); each method's options are listed below" : "a method option (repeat); each method's options are listed below",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .addHelpText('after', lines.length === 0 ? '' : `\nMethod options (--set ${perMethod ? 'method.key=value' : 'key=value'}):\n${lines.join('\n')}\n`);
}

/** The `--set` values for a method, checked against its declaration. */
export function methodOptionValues(method: string, sets: readonly string[] | undefined): Record<string, OptionValue> {
  const m = getMethod(method);
  return parseOptionTexts(m.name, m.options ?? {}, sets ?? []);
}

/**
 * `--set method.key=value` texts routed to their methods, each method's checked against its
 * declaration; E_USAGE for a text without a method and for a method not in `methods`.
 */
export function perMethodOptionValues(methods: readonly string[], sets: readonly string[] | undefined): Record<string, Record<string, OptionValue>> {
  const texts = new Map<string, string[]>();
  for (const text of sets ?? []) {
    const dot = text.indexOf('.');
    const eq = text.indexOf('=');
    if (dot <= 0 || (eq >= 0 && eq < dot)) throw new LowrankError('E_USAGE', `--set takes method.key=value, got '${text}'`);
    const method = text.slice(0, dot).trim();
    if (!methods.includes(method)) throw new LowrankError('E_USAGE', `--set ${text}: ${method} is not among the methods compared (${methods.join(', ')})`);
    texts.set(method, [...(texts.get(method) ?? []), text.slice(dot + 1)]);
  }
  return Object.fromEntries([...texts].map(([method, t]) => [method, methodOptionValues(method, t)]));
}

/**
 * The method options of `init`, `train`, `params` and `compare`: `--set key=value` (repeatable),
 * parsed and checked by the method's own declaration, and a help section listing every method's
 * options, built from the same declarations.
 */
import type { Command } from 'commander';
import { ALL_METHODS } from '../methods/all.js';
import { getMethod } from '../methods/registry.js';
import { optionHelp, parseOptionTexts, type OptionValue } from '../methods/options.js';

/** Adds `--set` and the options section of the help. */
export function withMethodOptions(cmd: Command): Command {
  const lines = ALL_METHODS.filter((m) => m.options !== undefined && Object.keys(m.options).length > 0).flatMap((m) => [`  ${m.name}:`, ...optionHelp(m.options ?? {}).map((l) => `    ${l}`)]);
  return cmd
    .option('--set <key=value>', "a method option (repeat); each method's options are listed below", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .addHelpText('after', lines.length === 0 ? '' : `\nMethod options (--set key=value):\n${lines.join('\n')}\n`);
}

/** The `--set` values for a method, checked against its declaration. */
export function methodOptionValues(method: string, sets: readonly string[] | undefined): Record<string, OptionValue> {
  const m = getMethod(method);
  return parseOptionTexts(m.name, m.options ?? {}, sets ?? []);
}

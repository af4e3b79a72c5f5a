/** Which weights the checkpoint tools act on by default, and the user's target regex. */
import { isFloatDType, type DType } from '../core/dtype.js';
import { patternOf, type Pattern } from '../core/pattern.js';

/** Last name components of nn.Embedding layers in transformers models. */
export const EMBEDDING_NAMES: ReadonlySet<string> = new Set(['embed_tokens', 'tok_embeddings', 'wte', 'wpe', 'word_embeddings', 'position_embeddings', 'token_type_embeddings', 'embed_positions', 'shared']);

/** Last name components of output heads (excluded by default, as PEFT's "all-linear" does). */
export const HEAD_NAMES: ReadonlySet<string> = new Set(['lm_head', 'embed_out']);

/** The last dot-separated component of a module name. */
export function lastPart(name: string): string {
  return name.slice(name.lastIndexOf('.') + 1);
}

/** Whether a module is a linear layer targeted by default: not an embedding, not an output head. */
export function isDefaultLinear(module: string): boolean {
  const last = lastPart(module);
  return !EMBEDDING_NAMES.has(last) && !HEAD_NAMES.has(last);
}

/**
 * Which layers an adapter goes on: module-name suffixes (PEFT's target_modules list, e.g.
 * ['q_proj', 'v_proj']), 'all-linear' (every 2-D weight but embeddings and the output head), or a
 * regex matched against the whole module name (PEFT's regex form): a RegExp of the caller's, or a
 * Pattern on RE2 (what the command line's `--targets` gives).
 */
export type LayerTargets = readonly string[] | 'all-linear' | RegExp | Pattern;

/** Whether `targets` is the regex form (not a list of suffixes or 'all-linear'). */
export function isRegexTarget(targets: LayerTargets): targets is RegExp | Pattern {
  return typeof targets === 'object' && 'source' in targets;
}

/** The regex form of `targets`; undefined for a list of suffixes or 'all-linear'. */
export function targetPattern(targets: LayerTargets): Pattern | undefined {
  return isRegexTarget(targets) ? patternOf(targets) : undefined;
}

/** The float 2-D `<module>.weight` tensors the targets select, in the given order. */
export function selectLayers<T extends { readonly name: string; readonly shape: readonly number[]; readonly dtype: DType }>(tensors: readonly T[], targets: LayerTargets): T[] {
  const pattern = targetPattern(targets);
  return tensors.filter((t) => {
    if (!t.name.endsWith('.weight') || t.shape.length !== 2 || !isFloatDType(t.dtype)) return false;
    const module = t.name.slice(0, -'.weight'.length);
    if (targets === 'all-linear') return isDefaultLinear(module);
    if (pattern !== undefined) return pattern.whole(module);
    return (targets as readonly string[]).includes(lastPart(module));
  });
}

/** The command-line form of {@link LayerTargets}: 'all-linear', a comma list of suffixes, or a regex. */
export function parseLayerTargets(text: string): LayerTargets {
  if (text === 'all-linear') return 'all-linear';
  if (/^[\w.,-]+$/.test(text)) return text.split(',').filter((s) => s !== '');
  return patternOf(text);
}

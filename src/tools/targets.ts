/** Which weights the checkpoint tools act on by default, and the user's target regex. */
import { LowrankError } from '../core/errors.js';
import { isFloatDType, type DType } from '../core/dtype.js';

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

/** The regex of `targets`, without the stateful g/y flags; E_USAGE when a string is not a valid regex. */
export function targetRegex(targets: RegExp | string): RegExp {
  if (typeof targets !== 'string') return new RegExp(targets.source, targets.flags.replace(/[gy]/g, ''));
  try {
    return new RegExp(targets);
  } catch {
    throw new LowrankError('E_USAGE', `targets '${targets}' is not a valid regular expression`);
  }
}

/**
 * Which layers an adapter goes on: module-name suffixes (PEFT's target_modules list, e.g.
 * ['q_proj', 'v_proj']), 'all-linear' (every 2-D weight but embeddings and the output head), or a
 * RegExp matched against the whole module name (PEFT's regex form).
 */
export type LayerTargets = readonly string[] | 'all-linear' | RegExp;

/** The float 2-D `<module>.weight` tensors the targets select, in the given order. */
export function selectLayers<T extends { readonly name: string; readonly shape: readonly number[]; readonly dtype: DType }>(tensors: readonly T[], targets: LayerTargets): T[] {
  const whole = targets instanceof RegExp ? new RegExp(`^(?:${targets.source})$`, targets.flags.replace(/[gy]/g, '')) : undefined;
  return tensors.filter((t) => {
    if (!t.name.endsWith('.weight') || t.shape.length !== 2 || !isFloatDType(t.dtype)) return false;
    const module = t.name.slice(0, -'.weight'.length);
    if (targets === 'all-linear') return isDefaultLinear(module);
    if (whole !== undefined) return whole.test(module);
    return (targets as readonly string[]).includes(lastPart(module));
  });
}

/** The command-line form of {@link LayerTargets}: 'all-linear', a comma list of suffixes, or a regex. */
export function parseLayerTargets(text: string): LayerTargets {
  if (text === 'all-linear') return 'all-linear';
  if (/^[\w.,-]+$/.test(text)) return text.split(',').filter((s) => s !== '');
  return targetRegex(text);
}

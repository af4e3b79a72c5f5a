/** What one API call on one input ended in, and which endings are findings. */

export type Outcome =
  | { kind: 'ok' }
  /** A LowrankError other than E_INTERNAL, with a one-line message: what a hostile input should get. */
  | { kind: 'typed'; code: string }
  /** Anything else thrown: an untyped exception, E_INTERNAL, a message over several lines. */
  | { kind: 'untyped'; name: string; code?: string; message: string; stack?: string }
  | { kind: 'timeout'; ms: number }
  /** The process's resident memory grew by more than the limit while the case ran. */
  | { kind: 'memory'; rssBytes: number }
  /** The worker died (an out-of-memory abort of its heap, a crash in native code). */
  | { kind: 'crash'; message: string };

export const isFinding = (o: Outcome): boolean => o.kind !== 'ok' && o.kind !== 'typed';

/** A short label for summaries: ok, the error code, or the kind of finding. */
export function label(o: Outcome): string {
  if (o.kind === 'typed') return o.code;
  if (o.kind === 'untyped') return `untyped ${o.code ?? o.name}`;
  return o.kind;
}

/** How an error thrown by an API is classified (in the worker, where LowrankError is the library's own class). */
export function classify(e: unknown, isLowrank: (e: unknown) => boolean): Outcome {
  const err = e instanceof Error ? e : undefined;
  const code = (e as { code?: unknown } | null)?.code;
  const message = err?.message ?? String(e);
  if (isLowrank(e) && code !== 'E_INTERNAL' && !/[\r\n]/.test(message)) return { kind: 'typed', code: String(code) };
  return { kind: 'untyped', name: err?.name ?? typeof e, code: typeof code === 'string' ? code : undefined, message: message.slice(0, 2000), stack: err?.stack?.slice(0, 4000) };
}

/**
 * Float32 buffers reused from one tensor to the next. A fresh large buffer costs a page fault per
 * 4 KiB on first touch (~2.4 µs here: more than decoding bf16 into it), so tools that stream a
 * model tensor by tensor decode into these instead.
 */

/** `take(slot, n)`: the slot's buffer, grown to at least n elements, viewed as exactly n. */
export type Scratch = (slot: number, n: number) => Float32Array;

/** A set of reusable buffers, one per slot; what a slot returned is overwritten by its next call. */
export function scratch(): Scratch {
  const bufs: Float32Array[] = [];
  return (slot, n) => {
    if ((bufs[slot]?.length ?? 0) < n) bufs[slot] = new Float32Array(n);
    return bufs[slot].subarray(0, n);
  };
}

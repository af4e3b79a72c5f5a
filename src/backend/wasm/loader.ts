/**
 * Feature detection and the choice of kernel build (platform-neutral; the host is a
 * {@link Platform}).
 *
 * Order: WebAssembly at all → shared memory (SharedArrayBuffer; browsers need cross-origin
 * isolation) → SIMD128 (the plain build validates) → relaxed SIMD (the relaxed build validates;
 * if not, the host's flag is turned on and it is validated again — Node 20 has relaxed SIMD behind
 * V8's --experimental-wasm-relaxed-simd, newer Node and Chromium ≥ 114 have it on) → threads
 * (shared memory, more than one core, and a host that can start workers).
 */
import type { Platform } from './platform.js';

/** Which SIMD a kernel build uses: relaxed (fused multiply-add) or plain SIMD128. */
export type SimdLevel = 'relaxed' | 'simd128';

/** What the caller may ask for: the best available, or one level (failing when it is missing). */
export type SimdChoice = 'auto' | SimdLevel;

/** The memory's largest size, in 64 KiB pages, tried in order (4 GiB, 1 GiB, 256 MiB). */
const MAXIMUM_PAGES = [65536, 16384, 4096] as const;

/** A compiled kernel build and the facts about how it was chosen. */
export interface LoadedKernels {
  /** The compiled build (compiled once; workers get this object, not the bytes). */
  readonly module: WebAssembly.Module;
  /** Which SIMD the build uses. */
  readonly simd: SimdLevel;
  /** Whether relaxed SIMD needed the host's flag (Node 20). */
  readonly relaxedFlag: boolean;
  /** Whether the build (and the memory it needs) is shared, so that workers can use it. */
  readonly shared: boolean;
  /** The largest memory this host grants the module, in 64 KiB pages. */
  readonly maximumPages: number;
  /** Where the build was read from. */
  readonly path: string;
  /** Why shared memory is unavailable, when it is. */
  readonly noSharedReason?: string;
}

/** The largest memory (in pages) the host lets us create, shared or not, or why none. */
function probeMemory(shared: boolean): { pages: number } | { reason: string } {
  let last = '';
  for (const pages of MAXIMUM_PAGES) {
    try {
      const memory = new WebAssembly.Memory({ initial: 1, maximum: pages, shared });
      if (shared && (typeof SharedArrayBuffer === 'undefined' || !(memory.buffer instanceof SharedArrayBuffer))) {
        return { reason: 'SharedArrayBuffer is unavailable (browsers need cross-origin isolation)' };
      }
      return { pages };
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
  }
  return { reason: shared ? `shared WebAssembly memory is unavailable (${last})` : `WebAssembly memory cannot be created (${last})` };
}

/** The file scripts/build-wasm.mjs writes for a SIMD level and memory kind. */
export function kernelFile(simd: SimdLevel, shared: boolean): string {
  return `gemm-${simd === 'relaxed' ? 'relaxed' : 'simd'}${shared ? '-shared' : ''}.wasm`;
}

/**
 * Picks and compiles the fastest kernel build this host runs (or the SIMD level asked for):
 * `kernels`, or `reason` saying why none can run.
 */
export function loadKernels(platform: Platform, choice: SimdChoice): { kernels: LoadedKernels } | { reason: string } {
  if (typeof WebAssembly !== 'object' || typeof WebAssembly.validate !== 'function') {
    return { reason: 'this JavaScript engine has no WebAssembly' };
  }
  const sharedProbe = probeMemory(true);
  const shared = 'pages' in sharedProbe;
  const memoryProbe = shared ? sharedProbe : probeMemory(false);
  if (!('pages' in memoryProbe)) return { reason: memoryProbe.reason };

  const plain = platform.readKernel(kernelFile('simd128', shared));
  if (!('bytes' in plain)) return { reason: plain.reason };
  if (!WebAssembly.validate(plain.bytes)) {
    return { reason: `this JavaScript engine lacks WebAssembly SIMD128 (${plain.path} does not validate)` };
  }

  let picked: { bytes: Uint8Array<ArrayBuffer>; path: string; simd: SimdLevel; relaxedFlag: boolean } = { ...plain, simd: 'simd128', relaxedFlag: false };
  if (choice !== 'simd128') {
    const relaxed = platform.readKernel(kernelFile('relaxed', shared));
    if ('bytes' in relaxed) {
      let ok = WebAssembly.validate(relaxed.bytes);
      let flag = false;
      if (!ok && platform.enableRelaxedSimd()) {
        ok = WebAssembly.validate(relaxed.bytes);
        flag = ok;
      }
      if (ok) picked = { ...relaxed, simd: 'relaxed', relaxedFlag: flag };
      else if (choice === 'relaxed') return { reason: 'this JavaScript engine lacks WebAssembly relaxed SIMD' };
    } else if (choice === 'relaxed') {
      return { reason: relaxed.reason };
    }
  }

  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(picked.bytes);
  } catch (e) {
    return { reason: `${picked.path} failed to compile: ${e instanceof Error ? e.message : String(e)}` };
  }
  return {
    kernels: {
      module,
      simd: picked.simd,
      relaxedFlag: picked.relaxedFlag,
      shared,
      maximumPages: memoryProbe.pages,
      path: picked.path,
      ...(shared ? {} : { noSharedReason: sharedProbe.reason }),
    },
  };
}

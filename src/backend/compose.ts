/**
 * A backend from the ops one implements and a chain of others for the rest: a backend implements
 * what it can (a GPU one: products and nn kernels), and each op it lacks comes from the first of
 * the chain that has it, ending with a backend that has them all (the js one). Two ops are derived
 * from the backend's own product before the chain is asked, so its products stay its own:
 * matmulAdd as C + alpha·matmul(A, B), and matmulAddHalf as matmulAdd rounded by encodeHalf; and
 * orthonormalize is the Q of the qr picked, unless a backend of the chain has its own.
 * Backends are plain objects of functions (none uses `this`), so ops are taken as they are.
 */
import type { Backend, FloatArray, Matrix, PartialBackend } from './types.js';

type Op = Exclude<keyof Backend, 'name'>;
type Ops = Partial<Omit<Backend, 'name'>>;

/** `own`'s ops, then the derived ones, then each of `between`'s, then `fallback`'s. */
export function composeBackend<B extends PartialBackend>(own: B, fallback: Backend, between: readonly PartialBackend[] = []): Omit<B, Op> & Backend {
  const derived: Ops = {};
  const matmul = own.matmul;
  if (matmul !== undefined) {
    derived.matmulAdd = async <A extends FloatArray>(c: Matrix<A>, a: Matrix<A>, b: Matrix<A>, alpha: number, transA: boolean, transB: boolean): Promise<Matrix<A>> => {
      const p = await matmul(a, b, transA, transB);
      const out = p.data;
      for (let i = 0; i < out.length; i++) out[i] = c.data[i] + alpha * out[i];
      return p;
    };
  }
  const chain: readonly Ops[] = [own, derived, ...between];
  const pick = <K extends Op>(op: K): Backend[K] => {
    for (const part of chain) {
      const f = part[op];
      if (f !== undefined) return f;
    }
    return fallback[op];
  };
  const matmulAdd = pick('matmulAdd');
  const qr = pick('qr');
  const encodeHalf = pick('encodeHalf');
  const ownsProducts = own.matmulAdd !== undefined || matmul !== undefined;
  return {
    ...own,
    matmul: pick('matmul'),
    matmulAdd,
    matmulAddHalf: own.matmulAddHalf ?? (ownsProducts ? async (c, a, b, alpha, transA, transB, format) => encodeHalf((await matmulAdd(c, a, b, alpha, transA, transB)).data, format) : pick('matmulAddHalf')),
    qr,
    // A backend's own orthonormalize, else the Q of its qr (not the fallback's slower one).
    orthonormalize: [own, ...between].find((part) => part.orthonormalize !== undefined)?.orthonormalize ?? (async (a) => (await qr(a)).q),
    svd: pick('svd'),
    eigh: pick('eigh'),
    lu: pick('lu'),
    cholesky: pick('cholesky'),
    solveTriangular: pick('solveTriangular'),
    allFinite: pick('allFinite'),
    encodeHalf,
    decodeHalf: pick('decodeHalf'),
    attention: pick('attention'),
    attentionBackward: pick('attentionBackward'),
    attentionCached: pick('attentionCached'),
    rmsNorm: pick('rmsNorm'),
    rmsNormBackward: pick('rmsNormBackward'),
    swiglu: pick('swiglu'),
    swigluBackward: pick('swigluBackward'),
    crossEntropy: pick('crossEntropy'),
    retainFreedMemory: pick('retainFreedMemory'),
  };
}

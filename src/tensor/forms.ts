/** Reconstruction and parameter counts for any factorized form, dispatched on its `kind`. */
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { cpParameters, cpToTensor } from './cp.js';
import { ttMatrixParameters, ttMatrixToMatrix, ttParameters, ttToTensor } from './tt.js';
import { tuckerParameters, tuckerToTensor } from './tucker.js';
import type { Factorized } from './types.js';

/**
 * The dense tensor a factorized form stands for (the matrix, for a TT-matrix).
 *
 * @example
 * const t = await tensor.tucker(x, [8, 8, 8]);
 * const y = await tensor.toTensor(t); // same shape as x
 */
export function toTensor<F extends FloatDType>(form: Factorized<F>): Promise<Tensor<F>> {
  switch (form.kind) {
    case 'tucker':
      return tuckerToTensor(form);
    case 'cp':
      return cpToTensor(form);
    case 'tt':
      return ttToTensor(form);
    case 'ttMatrix':
      return ttMatrixToMatrix(form);
  }
}

/**
 * How many numbers a factorized form stores.
 *
 * @example
 * const ratio = tensor.parameterCount(t) / x.data.length; // compression ratio
 */
export function parameterCount(form: Factorized): number {
  switch (form.kind) {
    case 'tucker':
      return tuckerParameters(form);
    case 'cp':
      return cpParameters(form);
    case 'tt':
      return ttParameters(form);
    case 'ttMatrix':
      return ttMatrixParameters(form);
  }
}

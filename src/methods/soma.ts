/**
 * SoMA (Yun et al. 2025): tune only the r minor singular components. The adapter starts from
 * U[:, −r:], S[−r:], V[:, −r:] split √S-wise into a LoRA pair over the residual — the same
 * arithmetic as MiLoRA (milora.ts) — so it saves and loads as a plain PEFT LoRA. SoMA's other
 * parts (frozen domain-generalizable blocks, annealed weight decay) belong to training.
 */
import { method as milora } from './milora.js';
import type { AdapterMethod } from './types.js';

export const method: AdapterMethod = {
  ...milora,
  name: 'soma',
  summary: 'minor singular components as a LoRA pair over the residual, trained with SoMA\'s schedule (SoMA)',
};

/** `lowrank inspect <path>`: what a model folder, adapter folder, safetensors or numpy file holds. */
import type { Command } from 'commander';
import { describe, type Description } from '../../io/describe.js';
import { table } from '../format.js';
import { formatBytes, formatCount } from '../../core/units.js';

/** Adds the command to the program. */
export function register(program: Command): void {
  program
    .command('inspect')
    .description('list the tensors of a model folder, PEFT adapter folder, .safetensors, .npy or .npz file, with totals; reads headers only')
    .argument('<path>', 'a file or folder')
    .option('--json', 'print the description as JSON')
    .action(async (path: string, opts: { json?: boolean }) => {
      const d = await describe(path);
      process.stdout.write(opts.json === true ? JSON.stringify(d, null, 2) + '\n' : render(d));
    });
}

function render(d: Description): string {
  const out: string[] = [];
  const shards = d.shards.length > 1 ? ` in ${d.shards.length} shards` : '';
  out.push(`${d.kind} ${d.path}${shards}`);
  if (d.architecture !== undefined) {
    out.push('', 'config.json:');
    for (const [k, v] of Object.entries(d.architecture)) out.push(`  ${k}: ${JSON.stringify(v)}`);
  }
  if (d.adapter !== undefined) {
    const a = d.adapter;
    out.push('', `adapter: ${a.peft_type}, method ${a.method}`);
    if (a.r !== undefined) {
      const ranks = a.ranks !== undefined && a.ranks.length > 1 ? ` (per module: ${a.ranks.join(', ')})` : '';
      out.push(`  rank ${a.r}${ranks}, alpha ${a.lora_alpha}, ${a.use_rslora ? 'rsLoRA scaling alpha/sqrt(r)' : 'scaling alpha/r'} = ${a.scalings?.map((s) => +s.toPrecision(6)).join(', ')}`);
    }
    out.push(`  targets: ${JSON.stringify(a.target_modules)}; ${a.modules} modules adapted`);
    if (a.base_model_name_or_path) out.push(`  base model: ${a.base_model_name_or_path}`);
  }
  out.push('', `tensors (${d.tensors.length}):`);
  const hasShard = d.tensors.some((t) => t.shard !== undefined);
  const header = ['name', 'dtype', 'shape', 'bytes', ...(hasShard ? ['shard'] : [])];
  const rows = d.tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, formatBytes(t.bytes), ...(t.shard !== undefined ? [t.shard] : [])]);
  out.push(table(header, rows, [3]));
  out.push('', 'totals:');
  const totalRows = Object.entries(d.totals.byDtype).map(([dt, t]) => [dt, String(t.tensors), `${formatCount(t.parameters)} (${t.parameters})`, formatBytes(t.bytes)]);
  totalRows.push(['all', String(d.totals.tensors), `${formatCount(d.totals.parameters)} (${d.totals.parameters})`, formatBytes(d.totals.bytes)]);
  out.push(table(['dtype', 'tensors', 'parameters', 'bytes'], totalRows, [1, 2, 3]));
  return out.join('\n') + '\n';
}

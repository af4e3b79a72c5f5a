/** A fuzz input: the files of one thing lowrank reads, held in memory until a case writes them out. */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** What the files are: a lone file (safetensors, npy, npz) or a folder (model, sharded model, PEFT or method adapter). */
export type Format = 'safetensors' | 'model' | 'sharded' | 'peft' | 'method' | 'npy' | 'npz';

export const FORMATS: readonly Format[] = ['safetensors', 'model', 'sharded', 'peft', 'method', 'npy', 'npz'];

export interface Sample {
  readonly format: Format;
  /** File name (inside the case's folder) → bytes. */
  readonly files: Readonly<Record<string, Uint8Array>>;
}

/** The name of the one file of a single-file format. */
const SINGLE: Partial<Record<Format, string>> = { safetensors: 'input.safetensors', npy: 'input.npy', npz: 'input.npz' };

/** Writes a sample's files into `dir` and returns the path the read APIs open (the file, or the folder). */
export async function writeSample(s: Sample, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(s.files)) await writeFile(join(dir, name), bytes);
  return targetOf(s.format, dir);
}

function targetOf(format: Format, dir: string): string {
  const single = SINGLE[format];
  return single === undefined ? dir : join(dir, single);
}

/** Every file of a folder (not recursive), as a sample's files. */
export async function readFolder(dir: string): Promise<Record<string, Uint8Array>> {
  const files: Record<string, Uint8Array> = {};
  for (const name of (await readdir(dir)).sort()) files[name] = new Uint8Array(await readFile(join(dir, name)));
  return files;
}

/**
 * Atomic outputs: every file or folder lowrank writes goes to a temporary name in the target's
 * folder and is renamed into place only when complete, so a reader sees the old state or the whole
 * new one, never half of it. Files opened as inputs are remembered and refused as outputs.
 */
import { open, rename, rm, mkdir, stat, realpath, type FileHandle } from 'node:fs/promises';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { LowrankError, fromSystemError } from '../core/errors.js';

/** Options shared by every writer. */
export interface WriteOptions {
  /** Replace an existing output. Default false: an existing output is an `E_EXISTS` error. */
  overwrite?: boolean;
}

const inProgress = new Set<string>();
/** Old folders moved aside while a new one takes their place: aside path → target. */
const movedAside = new Map<string, string>();
const openInputs = new Map<string, number>();

/** Marks a file as an input of this process (writers will refuse it) until {@link releaseInput}. */
export async function registerInput(path: string): Promise<string> {
  const real = await realpath(path).catch(() => resolve(path));
  openInputs.set(real, (openInputs.get(real) ?? 0) + 1);
  return real;
}

/** Undoes one {@link registerInput}. */
export function releaseInput(real: string): void {
  const n = (openInputs.get(real) ?? 0) - 1;
  if (n <= 0) openInputs.delete(real);
  else openInputs.set(real, n);
}

/**
 * Removes every temporary output still in progress. Synchronous so a signal handler can call it
 * before the process exits (the CLI does, on Ctrl-C).
 */
export function removeTempOutputsSync(): void {
  for (const p of inProgress) rmSync(p, { recursive: true, force: true });
  inProgress.clear();
  for (const [old, target] of movedAside) {
    // Interrupted mid-swap: keep the new folder if it is in place, else put the old one back.
    if (existsSync(target)) rmSync(old, { recursive: true, force: true });
    else renameSync(old, target);
  }
  movedAside.clear();
}

async function checkTarget(target: string, overwrite: boolean): Promise<void> {
  const abs = await realpath(target).catch(() => resolve(target));
  for (const input of openInputs.keys()) {
    if (input === abs || input.startsWith(abs + sep)) {
      throw new LowrankError('E_EXISTS', `refusing to write over an input of this job (${input})`, { file: target });
    }
  }
  const exists = await stat(target).then(() => true, () => false);
  if (exists && !overwrite) {
    throw new LowrankError('E_EXISTS', 'output already exists (pass --force / overwrite: true to replace it)', { file: target });
  }
}

function tempName(target: string, kind: 'tmp' | 'old'): string {
  return join(dirname(target), `.${basename(target)}.lowrank-${kind}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * Writes a file atomically: `write` fills a temporary file in the target's folder, which is synced
 * and renamed over `target` only if `write` completes. On any failure the temporary file is removed.
 */
export async function writeFileAtomic(target: string, write: (fh: FileHandle) => Promise<void>, opts: WriteOptions = {}): Promise<void> {
  await checkTarget(target, opts.overwrite ?? false);
  const tmp = tempName(target, 'tmp');
  inProgress.add(tmp);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'wx');
    await write(fh);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, target);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw fromSystemError(e, 'writing', target);
  } finally {
    inProgress.delete(tmp);
  }
}

/**
 * Writes a folder atomically: `fill` writes into a temporary folder beside `target`, which then
 * replaces `target`. When overwriting, the old folder is moved aside first and removed last; if the
 * swap fails or is interrupted between its two renames, the old folder is put back.
 */
export async function writeDirAtomic(target: string, fill: (dir: string) => Promise<void>, opts: WriteOptions = {}): Promise<void> {
  await checkTarget(target, opts.overwrite ?? false);
  await mkdir(dirname(resolve(target)), { recursive: true }).catch((e: unknown) => {
    throw fromSystemError(e, 'creating the parent folder', target);
  });
  const tmp = tempName(target, 'tmp');
  inProgress.add(tmp);
  let old: string | undefined;
  try {
    await mkdir(tmp);
    await fill(tmp);
    await syncDir(tmp);
    if (await stat(target).then(() => true, () => false)) {
      old = tempName(target, 'old');
      await rename(target, old);
      movedAside.set(old, target);
    }
    await rename(tmp, target);
    await syncDir(dirname(resolve(target)));
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    if (old !== undefined && !(await stat(target).then(() => true, () => false))) await rename(old, target);
    throw renamePath(fromSystemError(e, 'writing', target), tmp, target);
  } finally {
    inProgress.delete(tmp);
    if (old !== undefined) {
      movedAside.delete(old);
      await rm(old, { recursive: true, force: true });
    }
  }
}

/** An error whose message speaks of the temporary folder, re-worded to name the target instead. */
function renamePath(e: unknown, tmp: string, target: string): unknown {
  if (!(e instanceof LowrankError) || !e.message.includes(tmp)) return e;
  return new LowrankError(e.code, e.message.split(tmp).join(target), {}, { cause: e });
}

/** Flushes a folder's entries to disk (where the platform allows fsync on a folder). */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (fh === undefined) return;
  await fh.sync().catch(() => undefined);
  await fh.close();
}

/** Writes a small text file (a config, an index) and syncs it: for files inside a folder being written atomically. */
export async function writeTextFile(path: string, text: string): Promise<void> {
  const fh = await open(path, 'wx');
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes all of `bytes` at `position`, in pieces small enough for one system call. */
export async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  const piece = 1 << 28;
  for (let off = 0; off < bytes.length; ) {
    const len = Math.min(piece, bytes.length - off);
    const { bytesWritten } = await fh.write(bytes, off, len, position + off);
    off += bytesWritten;
  }
}

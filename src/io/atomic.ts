/**
 * Atomic outputs: every file or folder lowrank writes goes to a temporary name in the target's
 * folder and is renamed into place only when complete, so a reader sees the old state or the whole
 * new one, never half of it. Files opened as inputs are remembered and refused as outputs.
 *
 * A folder replacing an existing one is swapped in with one renameat2(RENAME_EXCHANGE) where the
 * OS allows (Linux, through the native addon); elsewhere the old folder is moved aside first and
 * removed last. A process killed at any point (kill -9, power loss) can leave temporaries behind,
 * and with the two-rename fallback an old folder aside with nothing at the target: every later
 * write to a target ({@link checkOutput}), and every read of a model folder (openModel) or an
 * adapter folder (readAdapterConfig, isAdapterFolder), first repairs it ({@link repairTarget}).
 *
 * Test hook: LOWRANK_FAULT, a comma-separated list, makes this process SIGKILL itself at
 * `kill-after-aside` (old folder aside, new one not yet in) or `kill-after-exchange`, and
 * `no-exchange` takes the two-rename fallback where the exchange would work.
 */
import { LowrankError, fromSystemError } from '../core/errors.js';
import { exists } from './files.js';
import { fs, type FileHandle } from './fs.js';
import { basename, dirname, join, resolve, sep } from './paths.js';

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
  const real = await fs().realpath(path).catch(() => resolve(path));
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
  for (const p of inProgress) fs().rmSync(p);
  inProgress.clear();
  for (const [old, target] of movedAside) settleAsideSync(old, target);
  movedAside.clear();
}

/**
 * Refuses an output that is (or holds) an input of this job, the inputs open now and `inputs`, or
 * that exists without `overwrite`, after repairing the target ({@link repairTarget}). Writers call
 * it; so do jobs before their work, to fail before it rather than after.
 */
export async function checkOutput(target: string, overwrite = false, inputs: readonly string[] = []): Promise<void> {
  const abs = await fs().realpath(target).catch(() => resolve(target));
  for (const input of [...openInputs.keys(), ...inputs.map((i) => resolve(i))]) {
    if (input === abs || input.startsWith(abs + sep)) {
      throw new LowrankError('E_EXISTS', `refusing to write over an input of this job (${input})`, { file: target });
    }
  }
  await repairTarget(target);
  if ((await exists(target)) && !overwrite) {
    throw new LowrankError('E_EXISTS', 'output already exists (pass --force / overwrite: true to replace it)', { file: target });
  }
}

function tempName(target: string, kind: 'tmp' | 'old'): string {
  const abs = resolve(target);
  const random = [...crypto.getRandomValues(new Uint8Array(4))].map((b) => b.toString(16).padStart(2, '0')).join('');
  return join(dirname(abs), `.${basename(abs)}.lowrank-${kind}-${fs().pid}-${random}`);
}

/** tempName's names: the target's base name, the kind, the writer's process id. */
const TEMP_NAME = /^\.(.+)\.lowrank-(tmp|old)-(\d+)-[0-9a-f]{8}$/s;

/**
 * Puts `target` in order after a writer died mid-write: an old folder left aside with nothing at
 * the target goes back; one beside a target (the new folder got in) is removed; temporaries of
 * processes that no longer exist are deleted. What live processes (this one included) are writing
 * is left alone. Best effort: what cannot be listed, moved or removed stays for a later run.
 */
export async function repairTarget(target: string): Promise<void> {
  const dir = dirname(resolve(target));
  const base = basename(resolve(target));
  const names = await fs().readdir(dir).catch((): string[] => []);
  const stale: { path: string; kind: string }[] = [];
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    const path = join(dir, name);
    if (m !== null && m[1] === base && !writing(Number(m[3]), path)) stale.push({ path, kind: m[2] });
  }
  for (const s of stale.filter((x) => x.kind === 'old')) await settleAside(s.path, target).catch(() => undefined);
  for (const s of stale.filter((x) => x.kind === 'tmp')) await fs().rm(s.path, { recursive: true, force: true }).catch(() => undefined);
}

/** An old folder moved aside for `target`: removed if the new one is in place, else put back. */
async function settleAside(old: string, target: string): Promise<void> {
  if (await exists(target)) await fs().rm(old, { recursive: true, force: true });
  else await fs().rename(old, target);
}

/** {@link settleAside} for a signal handler, which cannot wait. */
function settleAsideSync(old: string, target: string): void {
  if (fs().existsSync(target)) fs().rmSync(old);
  else fs().renameSync(old, target);
}

/** Whether process `pid` may still be writing `path`: this process only if it is one of its own, another while it exists. */
function writing(pid: number, path: string): boolean {
  if (pid === fs().pid) return inProgress.has(path) || movedAside.has(path);
  return fs().alive(pid);
}

/** The test hook of the module comment: true when `point` is set; the kill points do not return. */
function fault(point: 'no-exchange' | 'kill-after-aside' | 'kill-after-exchange'): boolean {
  if (typeof process === 'undefined' || !(process.env.LOWRANK_FAULT ?? '').split(',').includes(point)) return false;
  if (point !== 'no-exchange') process.kill(process.pid, 'SIGKILL');
  return true;
}

/**
 * Writes a file atomically: `write` fills a temporary file in the target's folder, which is synced
 * and renamed over `target` only if `write` completes. On any failure the temporary file is removed.
 */
export async function writeFileAtomic(target: string, write: (fh: FileHandle) => Promise<void>, opts: WriteOptions = {}): Promise<void> {
  await checkOutput(target, opts.overwrite);
  const tmp = tempName(target, 'tmp');
  inProgress.add(tmp);
  let fh: FileHandle | undefined;
  try {
    fh = await fs().open(tmp, 'wx');
    await write(fh);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fs().rename(tmp, target);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await fs().rm(tmp, { force: true });
    throw fromSystemError(e, 'writing', target);
  } finally {
    inProgress.delete(tmp);
  }
}

/**
 * Writes a folder atomically: `fill` writes into a temporary folder beside `target`, which then
 * replaces `target` ({@link swapIn}). On failure the temporary folder is removed and the target
 * is left as it was.
 */
export async function writeDirAtomic(target: string, fill: (dir: string) => Promise<void>, opts: WriteOptions = {}): Promise<void> {
  await checkOutput(target, opts.overwrite);
  await fs().mkdir(dirname(resolve(target)), { recursive: true }).catch((e: unknown) => {
    throw fromSystemError(e, 'creating the parent folder', target);
  });
  const tmp = tempName(target, 'tmp');
  inProgress.add(tmp);
  try {
    await fs().mkdir(tmp);
    await fill(tmp);
    await syncDir(tmp);
    await swapIn(tmp, target);
    await syncDir(dirname(resolve(target)));
  } catch (e) {
    throw renamePath(fromSystemError(e, 'writing', target), tmp, target);
  } finally {
    // The partial new folder, or after an exchange the old one.
    await fs().rm(tmp, { recursive: true, force: true });
    inProgress.delete(tmp);
  }
}

/**
 * Moves the complete folder `tmp` to `target`. An existing target is exchanged with it in one step
 * where the OS can (then `tmp` holds the old folder); elsewhere the old folder is moved aside, the
 * new one moved in, and the old one removed; if the second rename fails the old one is put back.
 */
async function swapIn(tmp: string, target: string): Promise<void> {
  if (!(await exists(target))) return fs().rename(tmp, target);
  if (!fault('no-exchange') && fs().exchange(tmp, target)) {
    fault('kill-after-exchange');
    return;
  }
  const old = tempName(target, 'old');
  // Marked before the rename, so a repair running meanwhile leaves it to this writer.
  movedAside.set(old, target);
  try {
    await fs().rename(target, old);
  } catch (e) {
    movedAside.delete(old);
    throw e;
  }
  try {
    fault('kill-after-aside');
    await fs().rename(tmp, target);
  } catch (e) {
    await settleAside(old, target).catch(() => undefined); // if this fails, a later repair does it
    throw e;
  } finally {
    movedAside.delete(old);
  }
  await fs().rm(old, { recursive: true, force: true });
}

/** An error whose message speaks of the temporary folder, re-worded to name the target instead. */
function renamePath(e: unknown, tmp: string, target: string): unknown {
  if (!(e instanceof LowrankError) || !e.message.includes(tmp)) return e;
  return new LowrankError(e.code, e.message.split(tmp).join(target), {}, { cause: e });
}

/** Flushes a folder's entries to disk (where the platform allows fsync on a folder). */
async function syncDir(dir: string): Promise<void> {
  const fh = await fs().open(dir, 'r').catch(() => undefined);
  if (fh === undefined) return;
  await fh.sync().catch(() => undefined);
  await fh.close();
}

/** Writes a small text file (a config, an index) and syncs it: for files inside a folder being written atomically. */
export async function writeTextFile(path: string, text: string): Promise<void> {
  const fh = await fs().open(path, 'wx');
  try {
    await fh.writeFile(text);
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

/**
 * A {@link FileSystem} in memory, for browsers: files a page was given (a `File` or any `Blob`,
 * read by ranges, never whole) and the files lowrank writes (kept as Blobs once closed). Folders
 * are a tree of names; renames move subtrees, and {@link FileSystem.exchange} swaps two in one
 * step, so atomic outputs keep their meaning. Runs in Node too (Blob is global there).
 *
 * @example
 * const files = memoryFileSystem();
 * files.add('/in/model/model.safetensors', droppedFile);
 * useFileSystem(files);
 * const analysis = await analyzeModel('/in/model');
 */
import type { FileHandle, FileStats, FileSystem } from './fs.js';
import { normalize } from './paths.js';

/** A memory file system, with ways to put the page's files in and get outputs out. */
export interface MemoryFileSystem extends FileSystem {
  /** Adds (or replaces) the file at `path`, creating its folders. */
  add(path: string, blob: Blob): void;
  /** The file at `path` as a Blob (E_NOT_FOUND-style ENOENT when absent, EISDIR for a folder). */
  blob(path: string): Blob;
  /** Every file under the folder `dir`, with its path relative to it ('/'-separated), in name order. */
  list(dir: string): { path: string; blob: Blob }[];
}

interface Dir {
  readonly kind: 'dir';
  readonly children: Map<string, Entry>;
}
interface File {
  readonly kind: 'file';
  blob: Blob;
  /** While a writer has it open: what it wrote, by position. */
  pending?: Piece[];
}
interface Piece {
  readonly position: number;
  readonly bytes: Uint8Array<ArrayBuffer>;
}
type Entry = Dir | File;

function sysError(code: string, syscall: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, syscall, path });
}

const stats = (e: Entry): FileStats => ({
  size: e.kind === 'file' ? sizeOf(e) : 0,
  isFile: () => e.kind === 'file',
  isDirectory: () => e.kind === 'dir',
});

function sizeOf(f: File): number {
  if (f.pending === undefined) return f.blob.size;
  return f.pending.reduce((end, p) => Math.max(end, p.position + p.bytes.length), 0);
}

/** A closed writer's pieces as one Blob: in order, gaps zero-filled, later writes over earlier ones. */
function settle(pending: readonly Piece[]): Blob {
  const inOrder = pending.every((p, i) => i === 0 ? p.position === 0 : p.position === pending[i - 1].position + pending[i - 1].bytes.length);
  if (inOrder) return new Blob(pending.map((p) => p.bytes));
  const out = new Uint8Array(pending.reduce((end, p) => Math.max(end, p.position + p.bytes.length), 0));
  for (const p of pending) out.set(p.bytes, p.position);
  return new Blob([out]);
}

export function memoryFileSystem(): MemoryFileSystem {
  const root: Dir = { kind: 'dir', children: new Map() };
  const parts = (path: string): string[] => {
    const abs = normalize(path.startsWith('/') ? path : `/${path}`);
    return abs === '/' ? [] : abs.slice(1).split('/');
  };
  const find = (path: string, syscall: string): Entry => {
    let at: Entry = root;
    for (const name of parts(path)) {
      if (at.kind !== 'dir') throw sysError('ENOTDIR', syscall, path);
      const next = at.children.get(name);
      if (next === undefined) throw sysError('ENOENT', syscall, path);
      at = next;
    }
    return at;
  };
  /** The folder that holds `path` (which must exist) and the entry's name in it. */
  const parentOf = (path: string, syscall: string): { dir: Dir; name: string } => {
    const p = parts(path);
    if (p.length === 0) throw sysError('EPERM', syscall, path);
    const dir = find('/' + p.slice(0, -1).join('/'), syscall);
    if (dir.kind !== 'dir') throw sysError('ENOTDIR', syscall, path);
    return { dir, name: p[p.length - 1] };
  };
  const mkdirp = (path: string): Dir => {
    let at: Dir = root;
    const names = parts(path);
    for (const [i, name] of names.entries()) {
      const next: Entry = at.children.get(name) ?? { kind: 'dir', children: new Map() };
      if (next.kind !== 'dir') throw sysError(i === names.length - 1 ? 'EEXIST' : 'ENOTDIR', 'mkdir', path);
      at.children.set(name, next);
      at = next;
    }
    return at;
  };
  const fileAt = (path: string, syscall: string): File => {
    const e = find(path, syscall);
    if (e.kind !== 'file') throw sysError('EISDIR', syscall, path);
    return e;
  };
  const handle = (entry: Entry, path: string): FileHandle => {
    let closed = false;
    const live = (syscall: string): void => {
      if (closed) throw sysError('EBADF', syscall, path);
    };
    return {
      async read(into, offset, length, position) {
        live('read');
        if (entry.kind !== 'file') throw sysError('EISDIR', 'read', path);
        const bytes = new Uint8Array(await entry.blob.slice(position, position + length).arrayBuffer());
        into.set(bytes, offset);
        return { bytesRead: bytes.length };
      },
      async write(from, offset, length, position) {
        live('write');
        if (entry.kind !== 'file' || entry.pending === undefined) throw sysError('EBADF', 'write', path);
        entry.pending.push({ position, bytes: from.slice(offset, offset + length) });
        return { bytesWritten: length };
      },
      async writeFile(text) {
        live('write');
        if (entry.kind !== 'file' || entry.pending === undefined) throw sysError('EBADF', 'write', path);
        entry.pending.push({ position: sizeOf(entry), bytes: new TextEncoder().encode(text) });
      },
      stat: async () => stats(entry),
      sync: async () => live('fsync'),
      datasync: async () => live('fdatasync'),
      async close() {
        if (closed) return;
        closed = true;
        if (entry.kind === 'file' && entry.pending !== undefined) {
          entry.blob = settle(entry.pending);
          entry.pending = undefined;
        }
      },
    };
  };
  const rename = (from: string, to: string): void => {
    const src = find(from, 'rename');
    const a = parentOf(from, 'rename');
    const b = parentOf(to, 'rename');
    if (`/${parts(to).join('/')}/`.startsWith(`/${parts(from).join('/')}/`) && parts(to).length > parts(from).length) throw sysError('EINVAL', 'rename', to);
    const there = b.dir.children.get(b.name);
    if (there !== undefined && there !== src) {
      if (src.kind === 'file' && there.kind === 'dir') throw sysError('EISDIR', 'rename', to);
      if (src.kind === 'dir' && there.kind === 'file') throw sysError('ENOTDIR', 'rename', to);
      if (there.kind === 'dir' && there.children.size > 0) throw sysError('ENOTEMPTY', 'rename', to);
    }
    a.dir.children.delete(a.name);
    b.dir.children.set(b.name, src);
  };
  const rm = (path: string, recursive: boolean, force: boolean): void => {
    let e: Entry;
    try {
      e = find(path, 'rm');
    } catch (err) {
      if (force && (err as { code?: string }).code === 'ENOENT') return;
      throw err;
    }
    if (e.kind === 'dir' && !recursive) throw sysError('ERR_FS_EISDIR', 'rm', path); // Node's code here
    const { dir, name } = parentOf(path, 'rm');
    dir.children.delete(name);
  };
  const exists = (path: string): boolean => {
    try {
      find(path, 'stat');
      return true;
    } catch {
      return false;
    }
  };

  return {
    async open(path, flags) {
      if (flags === 'r') return handle(find(path, 'open'), path);
      const { dir, name } = parentOf(path, 'open');
      if (dir.children.has(name)) throw sysError('EEXIST', 'open', path);
      const file: File = { kind: 'file', blob: new Blob([]), pending: [] };
      dir.children.set(name, file);
      return handle(file, path);
    },
    stat: async (path) => stats(find(path, 'stat')),
    async readdir(path) {
      const e = find(path, 'scandir');
      if (e.kind !== 'dir') throw sysError('ENOTDIR', 'scandir', path);
      return [...e.children.keys()];
    },
    readFile: async (path) => new Uint8Array(await fileAt(path, 'open').blob.arrayBuffer()),
    async mkdir(path, opts) {
      if (opts?.recursive === true) {
        mkdirp(path);
        return;
      }
      const { dir, name } = parentOf(path, 'mkdir');
      if (dir.children.has(name)) throw sysError('EEXIST', 'mkdir', path);
      dir.children.set(name, { kind: 'dir', children: new Map() });
    },
    rename: async (from, to) => rename(from, to),
    rm: async (path, opts) => rm(path, opts?.recursive === true, opts?.force === true),
    async copyFile(from, to) {
      const src = fileAt(from, 'copyfile');
      const { dir, name } = parentOf(to, 'copyfile');
      if (dir.children.get(name)?.kind === 'dir') throw sysError('EISDIR', 'copyfile', to);
      dir.children.set(name, { kind: 'file', blob: src.blob });
    },
    async realpath(path) {
      find(path, 'realpath');
      return '/' + parts(path).join('/');
    },
    cwd: () => '/',
    pid: 1,
    alive: () => false,
    exchange(a, b) {
      // As renameat2 refuses (EINVAL) one inside the other; false, not a throw, when either is missing.
      const [x, y] = [`/${parts(a).join('/')}/`, `/${parts(b).join('/')}/`];
      if (x.startsWith(y) || y.startsWith(x) || !exists(a) || !exists(b)) return false;
      const pa = parentOf(a, 'rename');
      const pb = parentOf(b, 'rename');
      const ea = pa.dir.children.get(pa.name);
      const eb = pb.dir.children.get(pb.name);
      if (ea === undefined || eb === undefined) return false;
      pa.dir.children.set(pa.name, eb);
      pb.dir.children.set(pb.name, ea);
      return true;
    },
    existsSync: exists,
    renameSync: rename,
    rmSync: (path) => rm(path, true, true),
    add(path, blob) {
      const p = parts(path);
      if (p.length === 0) throw sysError('EISDIR', 'open', path);
      const name = p[p.length - 1];
      const dir = mkdirp('/' + p.slice(0, -1).join('/'));
      if (dir.children.get(name)?.kind === 'dir') throw sysError('EISDIR', 'open', path);
      dir.children.set(name, { kind: 'file', blob });
    },
    blob: (path) => fileAt(path, 'open').blob,
    list(dir) {
      const out: { path: string; blob: Blob }[] = [];
      const walk = (d: Dir, prefix: string): void => {
        for (const [name, e] of [...d.children].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
          if (e.kind === 'dir') walk(e, `${prefix}${name}/`);
          else out.push({ path: prefix + name, blob: e.blob });
        }
      };
      const start = find(dir, 'scandir');
      if (start.kind !== 'dir') throw sysError('ENOTDIR', 'scandir', dir);
      walk(start, '');
      return out;
    },
  };
}

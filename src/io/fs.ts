/**
 * The file system lowrank's readers and writers work on: the disk in Node, files a page was given
 * (and the outputs it makes) in a browser. A small interface (the calls io makes, with Node's
 * error codes: ENOENT, EEXIST, ...); the semantics (formats, atomic outputs, repair) are above it,
 * one code path for both.
 *
 * In Node the disk is used ({@link nodeFileSystem}, imported only when the host is Node, as the
 * backend does with its Node-only loaders). Elsewhere there is none until {@link useFileSystem}
 * installs one, such as a memoryFileSystem() holding a page's dropped files.
 */
import { LowrankError } from '../core/errors.js';
import { IN_NODE } from '../core/host.js';

/** What a stat says. */
export interface FileStats {
  readonly size: number;
  isFile(): boolean;
  isDirectory(): boolean;
}

/** An open file (Node's FileHandle has this shape). */
export interface FileHandle {
  read(into: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(from: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  /** Writes all of `text` (UTF-8) from where the handle stands (a new file: from the start). */
  writeFile(text: string): Promise<void>;
  stat(): Promise<FileStats>;
  sync(): Promise<void>;
  datasync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The calls io makes. Paths are absolute or relative to {@link FileSystem.cwd}, '/'-separated
 * (Node's on POSIX). Failures reject with an Error whose `code` is Node's (ENOENT, EEXIST, EISDIR,
 * ENOTDIR, ENOTEMPTY, ENOSPC...), which io turns into LowrankErrors naming the file.
 */
export interface FileSystem {
  /** 'r' reads (never blocks on a FIFO); 'wx' creates a new file, failing with EEXIST when one is there. */
  open(path: string, flags: 'r' | 'wx'): Promise<FileHandle>;
  stat(path: string): Promise<FileStats>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Uint8Array>;
  mkdir(path: string, opts?: { recursive?: boolean }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, opts?: { recursive?: boolean; force?: boolean }): Promise<void>;
  copyFile(from: string, to: string): Promise<void>;
  realpath(path: string): Promise<string>;
  cwd(): string;
  /** This writer's id in temporary names, and whether the writer with another id may still be running. */
  readonly pid: number;
  alive(pid: number): boolean;
  /** Exchanges two folders in one step where the platform can; false where it cannot (then nothing moved). */
  exchange(a: string, b: string): boolean;
  /** For a signal handler, which cannot wait. */
  existsSync(path: string): boolean;
  renameSync(from: string, to: string): void;
  rmSync(path: string): void;
}

/** Where Node's implementation is (a variable, so that bundlers for browsers leave it out). */
const NODE_FS = './nodeFs.js';

const host: FileSystem | undefined = IN_NODE
  ? ((await import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_FS)) as typeof import('./nodeFs.js')).nodeFileSystem
  : undefined;

let current: FileSystem | undefined = host;

/** The file system io uses now. E_UNSUPPORTED where there is none (a browser before {@link useFileSystem}). */
export function fs(): FileSystem {
  if (current === undefined) {
    throw new LowrankError('E_UNSUPPORTED', 'no file system here: in a browser, install one with useFileSystem(memoryFileSystem()) and add the page\'s files to it');
  }
  return current;
}

/** Makes `files` the file system io uses (and returns the one it replaces). */
export function useFileSystem(files: FileSystem): FileSystem | undefined {
  const before = current;
  current = files;
  return before;
}

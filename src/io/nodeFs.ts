/** The disk, for Node: {@link FileSystem} over node:fs. */
import { constants, existsSync, renameSync, rmSync } from 'node:fs';
import * as disk from 'node:fs/promises';
import { renameExchange } from '../backend/native/index.js';
import type { FileSystem } from './fs.js';

export const nodeFileSystem: FileSystem = {
  // O_NONBLOCK: opening a FIFO for reading must not wait for a writer (regular files ignore it).
  open: (path, flags) => disk.open(path, flags === 'r' ? constants.O_RDONLY | constants.O_NONBLOCK : 'wx'),
  stat: (path) => disk.stat(path),
  readdir: (path) => disk.readdir(path),
  readFile: (path) => disk.readFile(path),
  mkdir: async (path, opts) => {
    await disk.mkdir(path, opts);
  },
  rename: (from, to) => disk.rename(from, to),
  rm: (path, opts) => disk.rm(path, opts),
  copyFile: (from, to) => disk.copyFile(from, to),
  realpath: (path) => disk.realpath(path),
  cwd: () => process.cwd(),
  pid: process.pid,
  alive(pid) {
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
    }
  },
  exchange: (a, b) => renameExchange(a, b),
  existsSync: (path) => existsSync(path),
  renameSync: (from, to) => renameSync(from, to),
  rmSync: (path) => rmSync(path, { recursive: true, force: true }),
};

/**
 * '/'-separated paths, as Node's `path` treats them on POSIX, for io on any {@link FileSystem}
 * (relative paths resolve against its cwd). Pure string work: nothing is looked up.
 */
import { fs } from './fs.js';

export const sep = '/';

/** `path` with '.', '..' and repeated separators resolved ('' becomes '.'); a trailing '/' is dropped. */
export function normalize(path: string): string {
  const absolute = path.startsWith('/');
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!absolute) out.push('..');
    } else out.push(part);
  }
  const body = out.join('/');
  return absolute ? '/' + body : body === '' ? '.' : body;
}

export function join(...parts: string[]): string {
  return normalize(parts.filter((p) => p !== '').join('/') || '.');
}

/** The absolute form of `parts` joined, the first absolute one from the right starting it (else the cwd). */
export function resolve(...parts: string[]): string {
  let path = '';
  for (let i = parts.length - 1; i >= 0 && !path.startsWith('/'); i--) {
    if (parts[i] !== '') path = path === '' ? parts[i] : `${parts[i]}/${path}`;
  }
  if (!path.startsWith('/')) path = `${fs().cwd()}/${path}`;
  return normalize(path);
}

export function basename(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** Everything before the last name, as Node's posix dirname: trailing '/'s ignored, the rest kept as written. */
export function dirname(path: string): string {
  if (path === '') return '.';
  const rooted = path.startsWith('/');
  let end = -1;
  let inTrailingSlashes = true;
  for (let i = path.length - 1; i >= 1; i--) {
    if (path[i] === '/') {
      if (!inTrailingSlashes) {
        end = i;
        break;
      }
    } else inTrailingSlashes = false;
  }
  if (end === -1) return rooted ? '/' : '.';
  if (rooted && end === 1) return '//';
  return path.slice(0, end);
}

/** The path from `from` to `to` (both resolved). */
export function relative(from: string, to: string): string {
  const a = resolve(from).split('/').filter((p) => p !== '');
  const b = resolve(to).split('/').filter((p) => p !== '');
  let common = 0;
  while (common < a.length && common < b.length && a[common] === b[common]) common++;
  return [...a.slice(common).map(() => '..'), ...b.slice(common)].join('/');
}

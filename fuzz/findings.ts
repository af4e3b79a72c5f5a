/** Findings: inputs that ended in something other than success or a typed error, saved so they replay. */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ApiName } from './apis.js';
import type { Outcome } from './outcome.js';
import { readFolder, type Format, type Sample } from './sample.js';

export interface Finding {
  /** A hash of the API and the input files: the same bug found twice is one folder. */
  id: string;
  /** The probe's name, or `case <index> of seed <seed>`. */
  name: string;
  format: Format;
  api: ApiName;
  outcome: Outcome;
  /** What is wrong, in words: the outcome, or what a probe expected instead. */
  problem: string;
  seed?: number;
  index?: number;
  mutations?: string[];
  /** Where it was saved. */
  dir?: string;
}

export function findingId(api: ApiName, s: Sample): string {
  const h = createHash('sha256').update(api).update(s.format);
  for (const [name, bytes] of Object.entries(s.files).sort(([a], [b]) => (a < b ? -1 : 1))) h.update(name).update(String(bytes.length)).update(bytes);
  return h.digest('hex').slice(0, 16);
}

/** The command that reruns the finding saved in `dir`. */
export function replayCommand(dir: string): string {
  return `node dist/fuzz/run.js --replay ${dir}`;
}

/** Saves the finding's input under `root/<id>/input/` and its description as `root/<id>/finding.json`. */
export async function saveFinding(root: string, f: Finding, s: Sample): Promise<string> {
  const dir = join(root, f.id);
  await mkdir(join(dir, 'input'), { recursive: true });
  for (const [name, bytes] of Object.entries(s.files)) await writeFile(join(dir, 'input', name), bytes);
  await writeFile(join(dir, 'finding.json'), JSON.stringify({ ...f, dir: undefined, replay: replayCommand(dir) }, null, 2) + '\n');
  return dir;
}

export async function loadFinding(dir: string): Promise<{ finding: Finding; sample: Sample }> {
  const finding = JSON.parse(await readFile(join(dir, 'finding.json'), 'utf8')) as Finding;
  return { finding, sample: { format: finding.format, files: await readFolder(join(dir, 'input')) } };
}

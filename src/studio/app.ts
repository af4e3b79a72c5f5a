/**
 * The studio page (`lowrank studio`; built into dist/studio/ by scripts/build-studio.mjs): files
 * the user drops or picks go into a memory file system, and the library runs on them in the tab
 * as the CLI runs on folders (the same calls, the same outputs), on the wasm backend. Nothing is
 * uploaded. Plain DOM: the page's elements are in index.html, this script fills them.
 */
import { zipSync } from 'fflate';
import {
  analysis, initWasmBackend, io, isLowrankError, LowrankError, memoryFileSystem, tools, train, useFileSystem,
} from '../browser.js';
import { formatBytes, formatCount } from '../core/units.js';

/** Where each kind of input goes in the memory file system, and what the page calls it. */
const SLOTS = {
  model: 'Model',
  base: 'Base model',
  adapter: 'Adapter',
  adapter2: 'Second adapter',
} as const;
type Slot = keyof typeof SLOTS;

const files = memoryFileSystem();
useFileSystem(files);

/** The folder (or file) name each slot was given, for titles and adapter configs. */
const given = new Map<Slot, string>();
/** How paths inside each slot are shown: under the folder's name, or bare for files picked one by one. */
const shownAs = new Map<Slot, string>();

/** A message with the memory file system's paths (/in/model/...) put as the user knows them. */
function userPaths(text: string): string {
  return text.replace(/\/in\/(adapter2|adapter|model|base)(\/?)/g, (_, slot: Slot, slash: string) => (slash === '' ? (given.get(slot) ?? slot) : (shownAs.get(slot) ?? ''))).replace(/\/out\//g, '');
}

/** The page's element `id`, checked to be of the kind asked for (HTMLElement by default). */
function $(id: string): HTMLElement;
function $<T extends Element>(id: string, kind: abstract new () => T): T;
function $(id: string, kind: abstract new () => Element = HTMLElement): Element {
  const e = document.getElementById(id);
  if (e instanceof kind) return e;
  throw new Error(`the page has no ${kind.name} #${id}`);
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

// ---- errors, as the CLI words them ----

function showError(e: unknown): void {
  const box = $('error');
  const text = userPaths(isLowrankError(e) ? `error: ${e.message}` : `internal error: ${e instanceof Error ? e.message : String(e)}`);
  box.textContent = text;
  box.dataset.code = isLowrankError(e) ? e.code : 'internal';
  box.hidden = false;
  if (!isLowrankError(e)) console.error(e);
}

function clearError(): void {
  $('error').hidden = true;
  $('error').textContent = '';
}

/** The action running can be cancelled (the library's progress hooks check for it). */
let cancellable = false;

/** Runs one user action: one at a time, errors shown, the busy state on the body for tests and styles. */
async function action(name: string, run: () => Promise<void>, canCancel = false): Promise<void> {
  if (document.body.dataset.busy !== undefined) return;
  clearError();
  document.body.dataset.busy = name;
  cancellable = canCancel;
  refresh();
  try {
    await run();
  } catch (e) {
    showError(e);
  } finally {
    delete document.body.dataset.busy;
    refresh();
  }
}

// ---- inputs ----

interface Picked {
  readonly path: string;
  readonly blob: Blob;
}

/** Files from a folder pick carry 'top/inner/name': the top folder names the input, the rest is the path inside it. */
function fromInput(list: FileList): { name: string; folder: boolean; picked: Picked[] } {
  const all = [...list];
  const rel = all.map((f) => f.webkitRelativePath || f.name);
  const tops = new Set(rel.map((p) => (p.includes('/') ? p.slice(0, p.indexOf('/')) : '')));
  const top = tops.size === 1 ? [...tops][0] : '';
  const picked = all.map((f, i) => ({ path: top === '' ? rel[i] : rel[i].slice(top.length + 1), blob: f }));
  return { name: top !== '' ? top : all.length === 1 ? all[0].name : 'files', folder: top !== '', picked };
}

/** What was dropped: one folder's files (read through the entries API), or the files themselves. */
async function fromDrop(dt: DataTransfer): Promise<{ name: string; folder: boolean; picked: Picked[] }> {
  const entries = [...dt.items].map((i) => i.webkitGetAsEntry()).filter((e): e is FileSystemEntry => e !== null);
  if (entries.length === 1 && entries[0].isDirectory) {
    const picked: Picked[] = [];
    await walk(entries[0] as FileSystemDirectoryEntry, '', picked);
    return { name: entries[0].name, folder: true, picked };
  }
  return fromInput(dt.files);
}

async function walk(dir: FileSystemDirectoryEntry, prefix: string, out: Picked[]): Promise<void> {
  const reader = dir.createReader();
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) return;
    for (const e of batch) {
      if (e.isDirectory) await walk(e as FileSystemDirectoryEntry, `${prefix}${e.name}/`, out);
      else out.push({ path: prefix + e.name, blob: await new Promise<File>((resolve, reject) => (e as FileSystemFileEntry).file(resolve, reject)) });
    }
  }
}

async function load(slot: Slot, { name, folder, picked }: { name: string; folder: boolean; picked: readonly Picked[] }): Promise<void> {
  const dir = `/in/${slot}`;
  await files.rm(dir, { recursive: true, force: true });
  given.delete(slot);
  for (const p of picked) files.add(`${dir}/${p.path}`, p.blob);
  const panel = $(`${slot}-info`);
  panel.replaceChildren();
  if (picked.length === 0) return;
  given.set(slot, name);
  shownAs.set(slot, folder ? `${name}/` : '');
  panel.append(el('p', { class: 'note' }, `${name}: reading headers…`));
  try {
    const d = await io.describe(dir);
    panel.replaceChildren(describeView(name, d));
  } catch (e) {
    panel.replaceChildren(el('p', { class: 'bad' }, `${name}: not readable`));
    await files.rm(dir, { recursive: true, force: true });
    given.delete(slot);
    throw e;
  }
}

/** The inspect view: what kind of folder, its config and adapter summary, the tensor table and totals. */
function describeView(name: string, d: Awaited<ReturnType<typeof io.describe>>): HTMLElement {
  const shards = d.shards.length > 1 ? ` in ${d.shards.length} shards` : '';
  const head = el('p', {}, el('strong', {}, name), ` — ${d.kind}${shards}, ${d.totals.tensors} tensors, ${formatCount(d.totals.parameters)} parameters, ${formatBytes(d.totals.bytes)}`);
  const box = el('div', { class: 'described', 'data-kind': d.kind, 'data-tensors': String(d.totals.tensors) }, head);
  if (d.adapter !== undefined) {
    const a = d.adapter;
    box.append(el('p', { class: 'note' }, `${a.peft_type} adapter (${a.method})${a.r !== undefined ? `, rank ${a.r}, alpha ${a.lora_alpha}` : ''}, ${a.modules} modules`));
  }
  const rows = d.tensors.map((t) => el('tr', {}, el('td', {}, t.name), el('td', {}, t.dtype), el('td', {}, `[${t.shape.join(', ')}]`), el('td', { class: 'num' }, formatBytes(t.bytes))));
  const table = el('table', { class: 'tensors' }, el('thead', {}, el('tr', {}, el('th', {}, 'name'), el('th', {}, 'dtype'), el('th', {}, 'shape'), el('th', {}, 'bytes'))), el('tbody', {}, ...rows));
  box.append(el('details', {}, el('summary', {}, `tensors (${d.tensors.length})`), table));
  return box;
}

function wireSlot(slot: Slot): void {
  const pick = async (list: FileList | null): Promise<void> => {
    if (list === null || list.length === 0) return;
    const input = fromInput(list);
    await action(`load-${slot}`, () => load(slot, input));
  };
  const folder = $(`${slot}-folder`, HTMLInputElement);
  const single = $(`${slot}-files`, HTMLInputElement);
  folder.addEventListener('change', () => void pick(folder.files).finally(() => (folder.value = '')));
  single.addEventListener('change', () => void pick(single.files).finally(() => (single.value = '')));
  const zone = $(`${slot}-zone`);
  zone.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    zone.classList.remove('over');
    const dt = ev.dataTransfer;
    if (dt === null) return;
    void action(`load-${slot}`, async () => load(slot, await fromDrop(dt)));
  });
}

// ---- progress and cancel ----

let cancelled = false;

/** A progress callback for the library's onTensor/onModule hooks; throws E_INTERRUPTED once Cancel was pressed. */
function progress(label: string): (name: string, index: number, count: number) => void {
  cancelled = false;
  const bar = $('progress', HTMLProgressElement);
  const text = $('progress-text');
  $('progress-box').hidden = false;
  bar.max = 1;
  bar.value = 0;
  text.textContent = `${label}…`;
  return (name, index, count) => {
    if (cancelled) throw new LowrankError('E_INTERRUPTED', `${label} cancelled`);
    bar.max = count;
    bar.value = index;
    text.textContent = `${label}: ${index + 1} of ${count} — ${name}`;
  };
}

/** Lets the page paint between tensors (the library's awaits alone may all be microtasks). */
const paint = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

function done(text: string): void {
  $('progress', HTMLProgressElement).value = $('progress', HTMLProgressElement).max;
  $('progress-text').textContent = text;
}

// ---- analysis ----

async function analyze(): Promise<void> {
  const model = '/in/model';
  const withBase = given.has('base');
  const withAdapter = !withBase && given.has('adapter');
  const tick = progress('analysis');
  const t0 = performance.now();
  const result = await analysis.analyzeModel(model, {
    compare: withBase ? '/in/base' : undefined,
    adapter: withAdapter ? '/in/adapter' : undefined,
    fast: $('fast', HTMLInputElement).checked,
    keepSpectra: true,
    onTensor: (name, i, n) => {
      tick(name, i, n);
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  // Named as the user knows the inputs, so the report and the JSON are what `lowrank analyze` writes for them.
  const named = { ...result, model: given.get('model') ?? 'model', compare: withBase ? (given.get('base') ?? null) : null, adapter: withAdapter ? (given.get('adapter') ?? null) : null };
  const html = await analysis.renderReport(named, { title: `lowrank analyze ${named.model}` });
  const frame = $('report', HTMLIFrameElement);
  frame.srcdoc = html;
  frame.hidden = false;
  const s = result.summary;
  done(`analysis done: ${result.layers.length} matrices, ${s.skipped} skipped, in ${seconds.toFixed(1)} s`);
  $('report-box').dataset.layers = String(result.layers.length);
  $('report-box').dataset.seconds = String(seconds);
  offer('analysis', [
    { path: 'report.html', blob: new Blob([html], { type: 'text/html' }) },
    { path: 'analysis.json', blob: new Blob([JSON.stringify(named, null, 2) + '\n'], { type: 'application/json' }) },
  ]);
}

// ---- adapter operations: each writes a folder under /out, offered for download ----

const positive = (id: string, what: string): number => {
  const v = Number($(id, HTMLInputElement).value);
  if (!Number.isInteger(v) || v < 1) throw new LowrankError('E_USAGE', `${what} must be a whole number ≥ 1`);
  return v;
};

async function fresh(out: string): Promise<string> {
  await files.rm(out, { recursive: true, force: true });
  await files.mkdir('/out', { recursive: true });
  return out;
}

/**
 * Each operation: the inputs it needs, whether its library call reports progress (and so can be
 * cancelled), and the call, which writes into `out` and returns what to say when done.
 */
const OPERATIONS: Record<string, { needs: Slot[]; cancellable: boolean; run: (out: string) => Promise<string> }> = {
  extract: {
    needs: ['base', 'model'],
    cancellable: true,
    async run(out) {
      const r = await tools.extractLora({ base: '/in/base', tuned: '/in/model', out, rank: positive('extract-rank', 'rank'), baseModelName: given.get('base'), onTensor: progress('extraction') });
      return `extracted ${r.modules.length} modules`;
    },
  },
  merge: {
    needs: ['model', 'adapter'],
    cancellable: true,
    async run(out) {
      const r = await tools.mergeAdapters({ base: '/in/model', adapters: [{ dir: '/in/adapter' }], out, onTensor: progress('merge') });
      return `merged ${r.merged.length} weights, ${r.unchanged} unchanged`;
    },
  },
  resize: {
    needs: ['adapter'],
    cancellable: true,
    async run(out) {
      const r = await tools.resizeAdapter({ adapter: '/in/adapter', out, rank: positive('resize-rank', 'rank'), onModule: progress('resize') });
      return `resized ${r.modules.length} modules`;
    },
  },
  convert: {
    needs: ['adapter', 'adapter2'],
    cancellable: false,
    async run(out) {
      progress('conversion');
      const r = await tools.convertToLora({ initial: '/in/adapter', trained: '/in/adapter2', out });
      return `converted ${r.modules} modules to rank-2r LoRA`;
    },
  },
  combine: {
    needs: ['adapter', 'adapter2'],
    cancellable: true,
    async run(out) {
      const r = await tools.combineAdapters({ adapters: [{ dir: '/in/adapter' }, { dir: '/in/adapter2' }], combine: 'linear', out, onModule: progress('combination') });
      return `combined ${r.modules.length} modules`;
    },
  },
};

/** Shows an output's files: one link each and a zip of all, named for the operation. */
function offer(name: string, list: readonly Picked[]): void {
  const box = $('outputs');
  const zip = el('button', { type: 'button', id: `${name}-zip` }, `download ${name}.zip`);
  zip.addEventListener('click', () => {
    void action('zip', async () => {
      const entries: Record<string, Uint8Array> = {};
      for (const f of list) entries[f.path] = new Uint8Array(await f.blob.arrayBuffer());
      save(`${name}.zip`, new Blob([zipSync(entries, { level: 0 })], { type: 'application/zip' }));
    });
  });
  const links = list.map((f) => {
    const a = el('a', { href: '#', 'data-file': f.path }, `${f.path} (${formatBytes(f.blob.size)})`);
    a.addEventListener('click', (ev) => {
      ev.preventDefault();
      save(f.path.replaceAll('/', '_'), f.blob);
    });
    return el('li', {}, a);
  });
  box.querySelector(`[data-output="${name}"]`)?.remove();
  box.prepend(el('div', { class: 'output', 'data-output': name }, el('h3', {}, name), zip, el('ul', {}, ...links)));
}

function save(name: string, blob: Blob): void {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// ---- the main job: the built-in model fine-tuned on addition ----

const COLORS: Record<string, string> = { lora: '#4c78a8', pissa: '#f58518' };

/** The built-in model's files, fetched once from beside the page into the file system at train.BUILTIN_MODEL. */
async function builtinModel(): Promise<void> {
  if (train.BUILTIN_FILES.every((f) => files.existsSync(`${train.BUILTIN_MODEL}/${f}`))) return;
  const fetched: Blob[] = [];
  for (const f of train.BUILTIN_FILES) {
    const url = new URL(`builtin/model/${f}`, location.href);
    const res = await fetch(url).catch((e: unknown) => {
      throw new LowrankError('E_IO', `cannot fetch the built-in model (${String(e)})`, { file: url.href });
    });
    if (!res.ok) throw new LowrankError('E_NOT_FOUND', `cannot fetch the built-in model (HTTP ${res.status})`, { file: url.href });
    fetched.push(await res.blob());
  }
  // Added only once every file has come, so a failed fetch leaves no half model behind.
  train.BUILTIN_FILES.forEach((f, i) => files.add(`${train.BUILTIN_MODEL}/${f}`, fetched[i]));
}

/** Draws every method's losses so far (log scale), as they come. */
function lossChart(losses: ReadonlyMap<string, readonly number[]>, steps: number): void {
  const svg = $('loss-chart', SVGSVGElement);
  const [w, h, left, bottom, top] = [640, 240, 44, 22, 12];
  const all = [...losses.values()].flat().filter((x) => x > 0 && Number.isFinite(x));
  const parts: string[] = [];
  if (all.length > 0) {
    const lo = Math.log(Math.min(...all));
    const hi = Math.log(Math.max(...all));
    const y = (v: number): number => top + (h - top - bottom) * (hi === lo ? 0.5 : (hi - Math.log(v)) / (hi - lo));
    const x = (i: number): number => left + ((w - left - 10) * i) / Math.max(1, steps - 1);
    [...losses].forEach(([method, ls], k) => {
      const color = COLORS[method] ?? '#555';
      const pts = ls.flatMap((v, i) => (v > 0 && Number.isFinite(v) ? [`${x(i).toFixed(1)},${y(v).toFixed(1)}`] : [])).join(' ');
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts}"/>`);
      parts.push(`<text x="${w - 70}" y="${top + 10 + 14 * k}" style="fill:${color}">${method}</text>`);
    });
    parts.push(`<text x="4" y="${top + 8}">${Math.exp(hi).toPrecision(3)}</text><text x="4" y="${h - bottom}">${Math.exp(lo).toPrecision(3)}</text>`);
  }
  parts.push(`<line x1="${left}" y1="${h - bottom}" x2="${w - 10}" y2="${h - bottom}" stroke="#999"/><text x="${left}" y="${h - 6}">step 1</text><text x="${w - 60}" y="${h - 6}">step ${steps}</text>`);
  svg.innerHTML = parts.join('');
}

async function finetune(): Promise<void> {
  const steps = positive('finetune-steps', 'steps');
  const methods = ['lora', 'pissa'].filter((m) => $(`finetune-${m}`, HTMLInputElement).checked);
  if (methods.length === 0) throw new LowrankError('E_USAGE', 'pick LoRA, PiSSA or both');
  await builtinModel();
  const out = await fresh('/out/finetune');
  const losses = new Map<string, number[]>(methods.map((m) => [m, []]));
  const tick = progress('fine-tune');
  let last = 0;
  const result = await train.runMainJob({
    out,
    steps,
    methods,
    onStep: (method, step, n, loss) => {
      losses.get(method)?.push(loss);
      tick(`${method}, loss ${loss.toFixed(3)}`, step - 1 + methods.indexOf(method) * n, n * methods.length);
      if (performance.now() - last > 100 || step === n) {
        last = performance.now();
        lossChart(losses, n);
      }
    },
  });
  lossChart(losses, steps);
  const rows = result.rows.map((r) =>
    el('tr', { 'data-method': r.method, 'data-loss-first': String(r.losses[0]), 'data-loss-last': String(r.trainLoss), 'data-eval-before': String(r.evalBefore), 'data-eval-after': String(r.evalAfter) },
      el('td', {}, r.method), el('td', {}, formatCount(r.trainable)), el('td', {}, `${r.losses[0].toFixed(3)} → ${r.trainLoss.toFixed(3)}`),
      el('td', {}, `${r.evalBefore.toFixed(3)} → ${r.evalAfter.toFixed(3)}`), el('td', {}, `${r.accuracyAfter.correct} / ${r.accuracyAfter.total}`), el('td', {}, `${r.seconds.toFixed(1)} s`)));
  const head = el('tr', {}, ...['method', 'trained', 'train loss', 'held-out loss', 'exact answers', 'time'].map((h) => el('th', {}, h)));
  const answers = result.heldOut.slice(0, 8).map((q, i) =>
    el('tr', {}, el('td', {}, `${q.prompt}${q.completion}`), el('td', {}, result.baseAnswers[i]), ...result.rows.map((r) => el('td', {}, r.answers[i]))));
  const answersHead = el('tr', {}, el('th', {}, 'held-out sum'), el('th', {}, 'base model'), ...result.rows.map((r) => el('th', {}, r.method)));
  $('finetune-results').replaceChildren(
    el('table', { class: 'results', id: 'finetune-table' }, el('thead', {}, head), el('tbody', {}, ...rows)),
    el('p', { class: 'note' }, `the base model answers ${result.baseAccuracy.correct} of ${result.baseAccuracy.total} held-out sums exactly; some answers:`),
    el('table', { class: 'results', id: 'finetune-answers' }, el('thead', {}, answersHead), el('tbody', {}, ...answers)),
  );
  done(`fine-tune done: ${result.rows.map((r) => `${r.method} ${r.accuracyAfter.correct}/${r.accuracyAfter.total}`).join(', ')}`);
  offer('finetune', files.list(out));
}

// ---- state ----

/** Enables what the loaded inputs allow. */
function refresh(): void {
  const busy = document.body.dataset.busy !== undefined;
  $('analyze', HTMLButtonElement).disabled = busy || !given.has('model');
  for (const [op, { needs }] of Object.entries(OPERATIONS)) {
    $(`run-${op}`, HTMLButtonElement).disabled = busy || !needs.every((s) => given.has(s));
  }
  $('run-finetune', HTMLButtonElement).disabled = busy;
  $('cancel', HTMLButtonElement).disabled = !busy || !cancellable;
}

async function start(): Promise<void> {
  for (const slot of Object.keys(SLOTS) as Slot[]) wireSlot(slot);
  $('analyze').addEventListener('click', () => void action('analyze', analyze, true));
  for (const [op, { run, cancellable: canCancel }] of Object.entries(OPERATIONS)) {
    $(`run-${op}`).addEventListener('click', () =>
      void action(
        op,
        async () => {
          const out = await fresh(`/out/${op}`);
          done(await run(out));
          await paint();
          offer(op, files.list(out));
        },
        canCancel,
      ),
    );
  }
  $('run-finetune').addEventListener('click', () => void action('finetune', finetune, true));
  $('cancel').addEventListener('click', () => {
    cancelled = true;
  });
  refresh();
  try {
    const wasm = await initWasmBackend();
    const threads = wasm.info.threads === 1 ? `one thread${wasm.info.threadsNote ? ` (${wasm.info.threadsNote})` : ''}` : `${wasm.info.threads} worker threads`;
    $('backend').textContent = `wasm backend, ${wasm.info.simd === 'relaxed' ? 'relaxed SIMD' : 'SIMD128'}, ${threads}`;
    document.body.dataset.backend = 'wasm';
  } catch (e) {
    $('backend').textContent = 'js backend (the wasm kernels did not load)';
    document.body.dataset.backend = 'js';
    showError(e);
  }
  document.body.dataset.ready = '';
}

void start();

/**
 * Progress bars for long jobs: a bar with ETA on a terminal (stderr), nothing on a pipe unless
 * LOWRANK_PROGRESS=1 asks for it.
 */
import cliProgress from 'cli-progress';

/** A progress reporter; a no-op when output is not a terminal. */
export interface Progress {
  tick(by?: number, label?: string): void;
  stop(): void;
}

/** Starts a bar of `total` steps titled `title`. */
export function progress(title: string, total: number): Progress {
  const show = process.stderr.isTTY === true || process.env.LOWRANK_PROGRESS === '1';
  if (!show || total <= 0) return { tick: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { format: `${title} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted} | {label}`, stream: process.stderr, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { label: '' });
  return {
    tick: (by = 1, label = '') => bar.increment(by, { label }),
    stop: () => bar.stop(),
  };
}

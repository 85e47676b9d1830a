/**
 * A progress bar on stderr when stderr is a terminal, and nothing otherwise (piped output, CI,
 * `--quiet`, `--json` consumers), so logs never fill with bar redraws.
 * @packageDocumentation
 */
import cliProgress from 'cli-progress';

/** What the sampling loop reports to. */
export interface Progress {
  /** Set the total number of steps (may be called again if it changes). */
  start(total: number, label: string): void;
  /** Mark `done` steps finished. */
  update(done: number): void;
  /** Remove the bar (on success, failure or interruption). */
  stop(): void;
}

const silent: Progress = { start() {}, update() {}, stop() {} };

/** A bar on stderr if `enabled` and stderr is a TTY, else a no-op. */
export function createProgress(enabled: boolean, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!enabled || !stream.isTTY) return silent;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: '{label} [{bar}] {value}/{total} steps | {duration_formatted} elapsed, eta {eta_formatted}',
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 8,
    },
    cliProgress.Presets.shades_classic,
  );
  let running = false;
  return {
    start(total, label) {
      if (running) bar.setTotal(total);
      else bar.start(total, 0, { label });
      running = true;
    },
    update(done) {
      if (running) bar.update(done);
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}

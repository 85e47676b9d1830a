/**
 * A progress bar on stderr when stderr is a terminal, and nothing otherwise (piped output, CI,
 * `--quiet`, `--json` consumers), so logs never fill with bar redraws.
 *
 * The bar appears at once: a phase line ("loading model", "sampling") with the time spent in it
 * until the first step is done, then `done/total` steps. The ETA is the mean time per finished
 * step since the phase began times the steps left, (elapsed / done)·(total − done), so the first
 * model call (and the time to the first step) counts and the estimate is not a rate from the last
 * few redraws.
 * @packageDocumentation
 */
import cliProgress from 'cli-progress';

/** What the sampling loop reports to. */
export interface Progress {
  /** Show a phase without a count (e.g. "loading model"); the ETA of a later {@link start} counts from here. */
  phase(label: string): void;
  /** Set the total number of steps (may be called again if it changes). */
  start(total: number, label: string): void;
  /** Mark `done` steps finished. */
  update(done: number): void;
  /** Remove the bar (on success, failure or interruption). */
  stop(): void;
}

const silent: Progress = { phase() {}, start() {}, update() {}, stop() {} };

/** `m:ss` (or `h:mm:ss`) of a duration in ms. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h > 0 ? 2 : 1, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** The remaining time from the mean step time so far: (elapsed / done)·(total − done); undefined before the first step. */
export function etaMs(elapsedMs: number, done: number, total: number): number | undefined {
  return done > 0 && total >= done ? (elapsedMs / done) * (total - done) : undefined;
}

interface Payload {
  label: string;
  counting: boolean;
  phaseStart: number;
}

/** A bar on `stream` if `enabled` and the stream is a TTY, else a no-op. */
export function createProgress(enabled: boolean, stream: NodeJS.WriteStream = process.stderr, now: () => number = () => performance.now()): Progress {
  if (!enabled || !stream.isTTY) return silent;
  const started = now();
  const format = (options: cliProgress.Options, params: cliProgress.Params, payload: Payload): string => {
    const t = now();
    const elapsed = formatDuration(t - started);
    if (!payload.counting) return `${payload.label} … | ${elapsed} elapsed`;
    const eta = etaMs(t - payload.phaseStart, params.value, params.total);
    const size = options.barsize ?? 30;
    const filled = params.total > 0 ? Math.round((params.value / params.total) * size) : 0;
    const bar = (options.barCompleteString ?? '=').slice(0, filled) + (options.barIncompleteString ?? '-').slice(0, size - filled);
    return `${payload.label} [${bar}] ${params.value}/${params.total} steps | ${elapsed} elapsed, eta ${eta === undefined ? '…' : formatDuration(eta)}`;
  };
  const bar = new cliProgress.SingleBar(
    { stream, format: format as cliProgress.GenericFormatter, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let running = false;
  let phaseStart = started;
  let counting = false;
  return {
    phase(label) {
      phaseStart = now();
      counting = false;
      const payload: Payload = { label, counting, phaseStart };
      if (running) {
        bar.update(0, payload);
        // A phase change is drawn now, not at the next throttled redraw: a phase that ends within
        // the throttle window (e.g. "sampling" before a fast first step) would otherwise never show.
        bar.render();
      } else bar.start(1, 0, payload);
      running = true;
    },
    start(total, label) {
      const payload: Payload = { label, counting: true, phaseStart };
      counting = true;
      if (running) {
        bar.setTotal(total);
        bar.update(0, payload);
      } else {
        bar.start(total, 0, payload);
      }
      running = true;
    },
    update(done) {
      if (running && counting) bar.update(done);
    },
    stop() {
      if (running) bar.stop();
      running = false;
      counting = false;
    },
  };
}

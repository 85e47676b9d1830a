/**
 * Ctrl-C handling for the command line: the first SIGINT (or SIGTERM) aborts the running job
 * through an AbortSignal, so it stops after the current network run and writes nothing; a second
 * one exits at once. Either way the exit code is 130 and, since outputs are written atomically
 * (temporary file + rename), no partial file is left under an output name.
 *
 * The parent going away counts as an interruption too. `npx rediffuse …` and `npm exec` run the
 * CLI as a child of npm; npm forwards SIGINT and SIGTERM to it, but a SIGKILL of npm (or of any
 * other wrapper that does not forward) leaves the child orphaned, re-parented to init or a
 * subreaper. So while a job runs, the parent pid is polled ({@link PARENT_POLL_MS}) and an IPC
 * `disconnect` is watched; when the parent is gone the job is aborted as by Ctrl-C, and if it has
 * not ended {@link PARENT_GRACE_MS} later the process exits with 130. (stdin is not watched: it is
 * often /dev/null or closed on purpose.)
 * @packageDocumentation
 */
import { EXIT_INTERRUPTED } from './cli-error.js';

/** How often the parent pid is checked, ms. */
export const PARENT_POLL_MS = 500;
/** How long a job may take to stop after its parent is gone before the process exits, ms. */
export const PARENT_GRACE_MS = 5000;

let controller: AbortController | undefined;
let parentTimer: NodeJS.Timeout | undefined;
/** The parent at module load, as early as the process can see it (a parent gone before the watch starts still counts). */
const startupParent = process.ppid;
let initialParent = 0;

function onSignal(): void {
  if (!controller || controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
  controller.abort(new Error('interrupted (Ctrl-C)'));
}

function onParentGone(): void {
  if (parentTimer) clearInterval(parentTimer);
  parentTimer = undefined;
  process.off('disconnect', onParentGone);
  // The parent may have held our stdout/stderr pipes: a write to a closed pipe must not crash the exit path.
  for (const s of [process.stdout, process.stderr]) s.on('error', () => {});
  try {
    process.stderr.write(`rediffuse: the parent process (pid ${initialParent}) is gone; stopping\n`);
  } catch {
    // stderr went with the parent
  }
  if (controller && !controller.signal.aborted) controller.abort(new Error('interrupted (the parent process exited)'));
  setTimeout(() => process.exit(EXIT_INTERRUPTED), PARENT_GRACE_MS).unref();
}

function watchParent(): void {
  initialParent = startupParent;
  // A pid of 0 or 1 at start: started by init (a container's entry point); there is nothing to watch.
  if (initialParent > 1) {
    if (process.ppid !== initialParent) {
      setImmediate(onParentGone);
      return;
    }
    parentTimer = setInterval(() => {
      if (process.ppid !== initialParent) onParentGone();
    }, PARENT_POLL_MS);
    parentTimer.unref();
  }
  if (process.connected) process.on('disconnect', onParentGone);
}

/** Install the handlers and the parent watch (idempotent) and return the signal that fires on Ctrl-C or when the parent is gone. */
export function interruptSignal(): AbortSignal {
  if (!controller) {
    controller = new AbortController();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    watchParent();
  }
  return controller.signal;
}

/** Remove the handlers (for in-process use; the next {@link interruptSignal} installs fresh ones). */
export function releaseInterrupt(): void {
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('disconnect', onParentGone);
  if (parentTimer) clearInterval(parentTimer);
  parentTimer = undefined;
  controller = undefined;
}

/**
 * Ctrl-C handling for the command line: the first SIGINT (or SIGTERM) aborts the running job
 * through an AbortSignal, so it stops after the current network run and writes nothing; a second
 * one exits at once. Either way the exit code is 130 and, since outputs are written atomically
 * (temporary file + rename), no partial file is left under an output name.
 * @packageDocumentation
 */
import { EXIT_INTERRUPTED } from './cli-error.js';

let controller: AbortController | undefined;

function onSignal(): void {
  if (!controller || controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
  controller.abort(new Error('interrupted (Ctrl-C)'));
}

/** Install the handlers (idempotent) and return the signal that fires on Ctrl-C. */
export function interruptSignal(): AbortSignal {
  if (!controller) {
    controller = new AbortController();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  return controller.signal;
}

/** Remove the handlers (for in-process use; the next {@link interruptSignal} installs fresh ones). */
export function releaseInterrupt(): void {
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  controller = undefined;
}

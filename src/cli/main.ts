#!/usr/bin/env node
/**
 * The `rediffuse` command line. Errors meant for the user print one line on stderr and exit 1;
 * Ctrl-C exits 130 without leaving a partial output file.
 *
 * The commands (onnxruntime, the solvers, the bench) are imported only after the Ctrl-C handlers and
 * the parent watch of `interrupt.ts` are installed, so an interruption during start-up is handled
 * (exit 130) rather than fatal.
 * @packageDocumentation
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { packageVersion } from '../node/index.js';
import { CliError, EXIT_FAILURE } from './cli-error.js';
import { interruptSignal, releaseInterrupt } from './interrupt.js';

/** Where the program's own messages (help, usage errors, error lines) go. */
export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

const processOutput: CliOutput = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

/** Build the `rediffuse` program with all its commands (imported here, on first use). */
export async function buildProgram(io: CliOutput = processOutput): Promise<Command> {
  const [{ registerSampleCommand }, { registerInspect }, { registerBench }, { registerAutofr }, { registerCard }, { registerTxt2Img }, { registerTune }] =
    await Promise.all([
      import('./commands/sample.js'),
      import('./commands/inspect.js'),
      import('./commands/bench.js'),
      import('./commands/autofr.js'),
      import('./commands/card.js'),
      import('./commands/txt2img.js'),
      import('./commands/tune.js'),
    ]);
  const [{ registerWorker }, { registerServe }] = await Promise.all([import('./commands/worker.js'), import('./commands/serve.js')]);
  const program = new Command();
  program
    .name('rediffuse')
    .description(
      'Faster sampling for pretrained diffusion models without retraining (PFDiff timestep skipping, FRDiff feature reuse) ' +
        'on a diffusers-grade solver suite, running ONNX models with onnxruntime.',
    )
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for the options)')
    .configureOutput({ writeOut: io.out, writeErr: io.err, outputError: (str, write) => write(str) })
    .exitOverride();
  registerSampleCommand(program);
  registerTxt2Img(program);
  registerInspect(program);
  registerCard(program);
  registerBench(program);
  registerAutofr(program);
  registerWorker(program);
  registerServe(program);
  registerTune(program);
  for (const cmd of program.commands) cmd.exitOverride().configureOutput({ writeOut: io.out, writeErr: io.err });
  return program;
}

/** Run the command line with `argv` (as `process.argv`); resolves to the exit code. */
export async function main(argv: readonly string[] = process.argv, io: CliOutput = processOutput): Promise<number> {
  interruptSignal(); // catch Ctrl-C from the start, before the commands and the model load
  try {
    const program = await buildProgram(io);
    await program.parseAsync(argv as string[]);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end with exit code 0; commander has printed the message already.
      return err.exitCode;
    }
    if (err instanceof CliError) {
      io.err(`rediffuse: ${err.message}\n`);
      return err.exitCode;
    }
    const e = err as Error;
    io.err(`rediffuse: ${e?.message ?? String(err)}\n`);
    if (process.env['REDIFFUSE_DEBUG']) io.err(`${e?.stack ?? ''}\n`);
    return EXIT_FAILURE;
  } finally {
    releaseInterrupt();
  }
}

function isEntryPoint(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`rediffuse: ${(err as Error)?.message ?? String(err)}\n`);
      process.exitCode = EXIT_FAILURE;
    },
  );
}

/**
 * The CLI as a user runs it, for tests: a subprocess (node --import tsx src/cli/main.ts) started in
 * a given folder, with its output, exit code or signal and wall time.
 * @packageDocumentation
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
/** tsx's loader by absolute URL, since the CLI runs from a folder outside the package. */
const TSX = import.meta.resolve('tsx');

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Spawn `rediffuse ARGS` in `cwd`; killed with SIGKILL after `timeoutMs` (default 120 s). */
export function spawnCli(args: string[], opts: { cwd: string; timeoutMs?: number; onSpawn?: (child: ReturnType<typeof spawn>) => void }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 });
    });
    opts.onSpawn?.(child);
  });
}

/**
 * Resolve once process `pid` has used `cpuMs` of CPU time (utime + stime in /proc/PID/stat, at
 * the usual 100 ticks per second): past the CLI's start-up (about 1 s of CPU; main() installs the
 * signal handlers and the parent watch first), so it is loading the model or sampling. CPU time,
 * not wall time, so a loaded machine does not make the interruption land before the handlers.
 * Falls back to a fixed wait where /proc is missing.
 */
export async function busyFor(pid: number, cpuMs = 4000, timeoutMs = 120_000): Promise<void> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      await new Promise((r) => setTimeout(r, 5000));
      return;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if ((Number(fields[11]) + Number(fields[12])) * 10 >= cpuMs) return; // fields 14, 15 of stat(5)
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`process ${pid} did not reach ${cpuMs} ms of CPU time within ${timeoutMs} ms`);
}

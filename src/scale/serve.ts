/**
 * An HTTP front for sampling: `GET /sample?class=…&count=…&nfe=…&solver=…&seed=…&guidance=…`
 * checks the request against the model card and the server's limits, runs it as sample batches on
 * a {@link JobExecutor} (the local pool or the BullMQ queue), and answers with the PNG grid — or,
 * with `Accept: text/event-stream` (or `stream=1`), with server-sent events: `progress` after every
 * finished batch, then `done` carrying the PNG in base64. A request is admitted only while fewer
 * than `maxQueue` requests are in flight (else 503 with Retry-After), so a burst is refused at once
 * instead of piling up; a refused or failed request is always answered, never dropped.
 * @packageDocumentation
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { imageGridPng } from '../node/index.js';
import { resolveClassLabel, sampleOptionsFromCard, SampleRequestError, type CardSamplingSetup, type ModelCard } from '../model/index.js';
import { distributeSamples } from './distribute.js';
import type { JobExecutor } from './executor.js';

/** Limits of one request and of the server. */
export interface ServeLimits {
  /** Most images per request. */
  maxCount: number;
  /** Most model calls (NFE) per request. */
  maxNfe: number;
  /** Most requests in flight at once; more get 503. */
  maxQueue: number;
}

/** Options of {@link createSampleServer}. */
export interface SampleServerOptions {
  executor: JobExecutor;
  card: ModelCard;
  sampling: CardSamplingSetup;
  modelHash: string;
  limits: ServeLimits;
  /** Samples per job. Default 64. */
  batch?: number;
}

/** A request's settings, checked. */
interface ParsedRequest {
  count: number;
  nfe: number;
  solver: string | undefined;
  seed: number;
  guidance: number | undefined;
  label: number | undefined;
  className: string;
  stream: boolean;
}

class BadRequest extends Error {}

const PARAMS = ['class', 'count', 'nfe', 'solver', 'seed', 'guidance', 'stream'];

function intParam(q: URLSearchParams, name: string, fallback: number, min: number, max: number, limitName?: string): number {
  const raw = q.get(name);
  if (raw === null) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new BadRequest(`${name} must be an integer ≥ ${min}, got "${raw}"`);
  if (v > max) throw new BadRequest(`${name} ${v} exceeds ${limitName ? `the server's limit ${limitName} ${max}` : `the largest value ${max}`}`);
  return v;
}

function parse(req: IncomingMessage, url: URL, o: SampleServerOptions): ParsedRequest {
  const q = url.searchParams;
  for (const k of q.keys()) if (!PARAMS.includes(k)) throw new BadRequest(`unknown parameter "${k}": use ${PARAMS.join(', ')}`);
  const count = intParam(q, 'count', Math.min(8, o.limits.maxCount), 1, o.limits.maxCount, '--max-count');
  const nfe = intParam(q, 'nfe', Math.min(o.sampling.defaultNfe ?? 20, o.limits.maxNfe), 1, o.limits.maxNfe, '--max-nfe');
  const seed = intParam(q, 'seed', 0, 0, 2 ** 32 - 1);
  const g = q.get('guidance');
  const guidance = g === null ? undefined : Number(g);
  if (guidance !== undefined && !(Number.isFinite(guidance) && guidance >= 0 && g !== ''))
    throw new BadRequest(`guidance must be a number ≥ 0, got "${g}"`);
  const choice = q.get('class') ?? 'none';
  let label: number | undefined;
  let className = '';
  if (choice !== 'none') {
    try {
      label = resolveClassLabel(o.card, choice);
    } catch (e) {
      throw new BadRequest(`class: ${(e as Error).message}`);
    }
    className = o.card.classNames?.[label] ?? `class ${label}`;
  }
  const stream = q.get('stream') === '1' || (req.headers.accept ?? '').includes('text/event-stream');
  return { count, nfe, solver: q.get('solver') ?? undefined, seed, guidance, label, className, stream };
}

/** Build the server (not yet listening). */
export function createSampleServer(o: SampleServerOptions): Server {
  let inFlight = 0;
  const batch = o.batch ?? 64;
  const conditional = o.sampling.numClasses > 0;
  const sampleSize = o.sampling.sampleShape.reduce((a, b) => a * b, 1);

  const fail = (res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}) => {
    if (res.headersSent) {
      res.end(`event: error\ndata: ${JSON.stringify({ error: message })}\n\n`);
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(`${JSON.stringify({ error: message })}\n`);
  };

  return createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname === '/health') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`${JSON.stringify({ inFlight, limits: o.limits, executor: o.executor.description })}\n`);
        return;
      }
      if (url.pathname !== '/sample') return fail(res, 404, `no ${url.pathname}: GET /sample?class=…&count=…&nfe=… (or /health)`);
      if (req.method !== 'GET') return fail(res, 405, 'use GET /sample?…');
      let p: ParsedRequest;
      let request: Parameters<typeof distributeSamples>[0]['request'];
      try {
        p = parse(req, url, o);
        request = {
          // The CLI's rule: the card's default solver, else DPM-Solver++ 2M.
          solver: p.solver ?? o.card.defaultSolver ?? 'dpmpp_2m',
          nfe: p.nfe,
          ...(p.guidance !== undefined ? { guidance: p.guidance } : {}),
          classConditional: conditional,
        };
        // The card's own checks (solver name, guidance rules) before anything is queued.
        sampleOptionsFromCard(o.sampling, {
          ...request,
          ...(p.label !== undefined ? { classLabels: Array(p.count).fill(p.label) } : {}),
          batch: p.count,
          seed: p.seed,
        });
      } catch (e) {
        // BadRequest, SampleRequestError and the solver registry's errors all name the field and the fix.
        return fail(res, 400, e instanceof SampleRequestError ? `${e.field}: ${e.message}` : (e as Error).message);
      }
      if (inFlight >= o.limits.maxQueue) {
        return fail(res, 503, `the server is busy: ${inFlight} request(s) in flight, its limit --max-queue is ${o.limits.maxQueue}; retry later`, {
          'retry-after': '1',
        });
      }
      inFlight++;
      const abort = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) abort.abort(new Error('client went away'));
      });
      try {
        if (p.stream) res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
        const t0 = performance.now();
        const d = await distributeSamples({
          request,
          ...(p.label !== undefined ? { classLabels: Array<number>(p.count).fill(p.label) } : {}),
          seed: p.seed,
          total: p.count,
          batch,
          modelHash: o.modelHash,
          sampleSize,
          executor: o.executor,
          signal: abort.signal,
          onProgress: (g) => {
            if (p.stream)
              res.write(`event: progress\ndata: ${JSON.stringify({ done: g.done, total: g.total, running: g.active, waiting: g.waiting })}\n\n`);
          },
        });
        const shown = o.card.imageRange === '[0,1]' ? Float32Array.from(d.samples, (v) => 2 * v - 1) : d.samples;
        const png = Buffer.from(
          imageGridPng(shown, {
            sampleShape: o.sampling.sampleShape,
            columns: p.label !== undefined ? p.count : Math.min(p.count, 8),
            ...(p.label !== undefined ? { rowLabels: [p.className] } : {}),
          }),
        );
        const info = { count: p.count, calls: d.first.calls, solver: d.first.solver, seed: p.seed, wallMs: performance.now() - t0 };
        if (p.stream) {
          res.end(`event: done\ndata: ${JSON.stringify({ ...info, png: png.toString('base64') })}\n\n`);
        } else {
          res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(png.length), 'x-rediffuse-run': JSON.stringify(info) });
          res.end(png);
        }
      } catch (e) {
        if (!abort.signal.aborted) fail(res, 500, (e as Error).message);
      } finally {
        inFlight--;
      }
    })();
  });
}

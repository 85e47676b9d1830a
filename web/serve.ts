/**
 * A static server for web/dist. It sends the cross-origin-isolation headers (COOP/COEP) that let
 * onnxruntime-web use WebAssembly threads, and the right MIME type for .wasm and .mjs.
 *
 *   npx tsx web/serve.ts [port]     (npm run web builds first)
 * @packageDocumentation
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.txt': 'text/plain; charset=utf-8',
  '.npy': 'application/octet-stream',
};

/** Serve `dir` on `port` (0 = any free port); resolves once listening. */
export function serveStatic(dir: string, port = 0): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = join(dir, path.endsWith('/') ? `${path}index.html` : path);
    if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'cache-control': 'no-cache',
    });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const a = server.address();
      resolveListen({ server, url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : port}/` });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'dist');
  if (!existsSync(join(dir, 'index.html'))) {
    process.stderr.write('web/dist is not built: run npm run build:web first\n');
    process.exit(1);
  }
  const { url } = await serveStatic(dir, Number(process.argv[2] ?? 8080));
  process.stderr.write(`rediffuse web page at ${url} (Ctrl-C to stop)\n`);
}

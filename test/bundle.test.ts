/**
 * The layers keep the README's promises: every browser entry bundles with esbuild for the browser
 * with no Node built-in anywhere in its import graph, each layer's bundle holds only the layers and
 * packages the architecture table says it depends on, and the Node entry bundles for Node.
 */
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { relative } from 'node:path';
import { describe, test } from 'node:test';
import { build, type Metafile, type Plugin } from 'esbuild';

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Fails the build on any import of a Node built-in, naming the file that imports it. */
const noNodeBuiltins: Plugin = {
  name: 'no-node-builtins',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      // `node:x` anywhere; a bare built-in name (`fs`, `path/posix`) from our own sources (a package may
      // import `events` or `buffer` and get the npm polyfill of that name)
      const own = !args.importer.includes('node_modules');
      if (!args.path.startsWith('node:') && !(own && NODE_BUILTINS.has(args.path.split('/')[0]!))) return undefined;
      return { errors: [{ text: `${relative(process.cwd(), args.importer)} imports the Node built-in '${args.path}', which a browser does not have` }] };
    });
  },
};

/** Bundle one entry for the browser; returns the metafile, or throws with esbuild's errors. */
async function browserBundle(entry: string): Promise<Metafile> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    metafile: true,
    logLevel: 'silent',
    plugins: [noNodeBuiltins],
  });
  return result.metafile;
}

/** The input files of a bundle, grouped: our own sources by layer folder, packages by name. */
function inputLayers(meta: Metafile): { sources: Set<string>; packages: Set<string> } {
  const sources = new Set<string>();
  const packages = new Set<string>();
  for (const path of Object.keys(meta.inputs)) {
    if (path.startsWith('(disabled):')) continue; // a package's own `browser` field maps the module to nothing (protobufjs: fs)
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
    if (pkg) packages.add(pkg[1]!);
    else sources.add(path.startsWith('src/') ? path.split('/').slice(0, 2).join('/') : path.split('/')[0]!);
  }
  return { sources, packages };
}

const sorted = (s: Set<string>) => [...s].sort();

describe('browser bundles (esbuild, platform browser, no Node built-ins)', () => {
  // entry → the layers (src/<folder>) and npm packages the README's architecture table allows it
  const cases: { entry: string; sources: string[]; packages: string[] }[] = [
    { entry: 'src/core/index.ts', sources: ['src/core'], packages: [] },
    { entry: 'src/model/index.ts', sources: ['src/core', 'src/model'], packages: ['long', 'protobufjs', '@protobufjs', '@huggingface/tokenizers'] },
    {
      entry: 'src/metrics/index.ts',
      sources: ['src/core', 'src/metrics'],
      packages: ['is-any-array', 'ml-array-max', 'ml-array-min', 'ml-array-rescale', 'ml-matrix'],
    },
    { entry: 'src/index.ts', sources: ['src/core', 'src/io', 'src/metrics', 'src/model', 'src/index.ts'], packages: [] },
  ];
  for (const { entry, sources, packages } of cases) {
    test(`${entry} bundles and holds only ${sources.join(', ')}${packages.length ? ' + its packages' : ''}`, async () => {
      const layers = inputLayers(await browserBundle(entry));
      assert.deepEqual(sorted(layers.sources), [...sources].sort(), `${entry} pulls in other layers`);
      if (entry === 'src/index.ts') {
        assert.ok(!layers.packages.has('pngjs'), 'the browser root entry must not bundle pngjs (PNG encoding is in the Node entry)');
      } else {
        for (const p of layers.packages) assert.ok(packages.includes(p), `${entry} bundles the package ${p}, which its layer does not depend on`);
      }
    });
  }

  test('the web page (web/app.ts) and its sampling worker (web/worker.ts, with onnxruntime-web) bundle', async () => {
    for (const entry of ['web/app.ts', 'web/worker.ts']) {
      const layers = inputLayers(await browserBundle(entry));
      assert.equal(layers.packages.has('onnxruntime-web'), entry === 'web/worker.ts', `${entry}: onnxruntime-web runs in the worker only`);
      assert.ok(!layers.sources.has('src/node') && !layers.sources.has('src/cli') && !layers.sources.has('src/bench'), sorted(layers.sources).join(', '));
    }
  });

  test('a Node built-in in a browser entry fails the bundle and names the importer', async () => {
    await assert.rejects(browserBundle('src/node/index.ts'), (err: Error & { errors?: { text: string }[] }) => {
      const texts = (err.errors ?? []).map((e) => e.text);
      assert.ok(texts.includes("src/node/load-model.ts imports the Node built-in 'node:fs', which a browser does not have"), texts.join('\n'));
      assert.ok(texts.includes("src/node/fashion-mnist.ts imports the Node built-in 'node:zlib', which a browser does not have"), texts.join('\n'));
      return true;
    });
  });
});

describe('Node bundle', () => {
  test('src/node/index.ts bundles for Node (packages external) and adds the Node loaders to the browser root', async () => {
    const result = await build({
      entryPoints: ['src/node/index.ts'],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    for (const f of ['src/node/load-model.ts', 'src/node/fashion-mnist.ts', 'src/node/reference-stats.ts', 'src/io/png.ts', 'src/index.ts']) {
      assert.ok(inputs.includes(f), `${f} is not in the Node bundle`);
    }
    const out = Object.values(result.metafile.outputs)[0]!;
    for (const name of ['loadOnnxModel', 'loadFashionMnist', 'loadReferenceStatistics', 'imageGridPng', 'writeFileAtomic', 'sample', 'loadClassifier']) {
      assert.ok(out.exports.includes(name), `the Node entry does not export ${name}`);
    }
  });
});

/**
 * The documented public surface (docs/api.md) is what the entries export: the lists on that page
 * equal the named export lists of the entry files (values and types), and the values equal what
 * each entry module exports at run time — so no internal (`singlestepStep`, `blockOrders`, …)
 * leaks through an `export *`.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

interface Names {
  values: Set<string>;
  types: Set<string>;
}

/** The entries, their files, and which other entries they re-export whole (`export * from`). */
const ENTRIES: { name: string; file: string; includes: string[] }[] = [
  { name: 'rediffuse/core', file: 'src/core/index.ts', includes: [] },
  { name: 'rediffuse/model', file: 'src/model/index.ts', includes: [] },
  { name: 'rediffuse/metrics', file: 'src/metrics/index.ts', includes: [] },
  { name: 'rediffuse', file: 'src/index.ts', includes: ['rediffuse/core', 'rediffuse/model', 'rediffuse/metrics'] },
  { name: 'rediffuse/node', file: 'src/node/index.ts', includes: ['rediffuse'] },
];

/** Names of the `export { … } from` / `export type { … } from` lists of an entry file. */
function sourceNames(file: string): Names {
  const out: Names = { values: new Set(), types: new Set() };
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/export\s+(type\s+)?\{([^}]*)\}\s+from/g)) {
    for (const raw of m[2]!.split(',')) {
      const item = raw.trim();
      if (!item) continue;
      const isType = m[1] !== undefined || item.startsWith('type ');
      const name = item
        .replace(/^type\s+/, '')
        .split(/\s+as\s+/)
        .pop()!;
      (isType ? out.types : out.values).add(name);
    }
  }
  return out;
}

/** The `- values:` / `- types:` lists of each `## \`entry\`` section of docs/api.md. */
function documentedNames(): Map<string, Names> {
  const sections = new Map<string, Names>();
  let current: Names | undefined;
  for (const line of readFileSync('docs/api.md', 'utf8').split('\n')) {
    const heading = /^## `([^`]+)`/.exec(line);
    if (heading) {
      current = { values: new Set(), types: new Set() };
      sections.set(heading[1]!, current);
      continue;
    }
    const list = /^- (values|types): (.*)$/.exec(line);
    if (list && current) for (const n of list[2]!.matchAll(/`([^`]+)`/g)) current[list[1] as 'values' | 'types'].add(n[1]!);
  }
  return sections;
}

const sorted = (s: Iterable<string>) => [...s].sort();

describe('public API (docs/api.md)', () => {
  const documented = documentedNames();

  test('docs/api.md has one section per entry', () => {
    assert.deepEqual(sorted(documented.keys()), sorted(ENTRIES.map((e) => e.name)));
  });

  for (const entry of ENTRIES) {
    test(`${entry.name}: the documented list is the entry file's list`, () => {
      const src = sourceNames(entry.file);
      const doc = documented.get(entry.name)!;
      assert.deepEqual(sorted(doc.values), sorted(src.values), `values of ${entry.file}`);
      assert.deepEqual(sorted(doc.types), sorted(src.types), `types of ${entry.file}`);
    });
  }

  /** Every value an entry exports: its own list plus those of the entries it includes. */
  const allValues = (name: string): Set<string> => {
    const entry = ENTRIES.find((e) => e.name === name)!;
    return new Set([...documented.get(name)!.values, ...entry.includes.flatMap((n) => [...allValues(n)])]);
  };

  for (const entry of ENTRIES) {
    test(`${entry.name}: exports exactly the documented values at run time`, async () => {
      const mod = (await import(`../${entry.file}`)) as Record<string, unknown>;
      assert.deepEqual(sorted(Object.keys(mod)), sorted(allValues(entry.name)));
    });
  }

  test('internals stay internal', async () => {
    const core = (await import('../src/core/index.js')) as Record<string, unknown>;
    for (const name of ['singlestepStep', 'blockOrders', 'firstOrderStep', 'dpmSolverUpdate', 'resolveOptions', 'createSolverContext', 'axpby']) {
      assert.equal(core[name], undefined, `rediffuse/core leaks ${name}`);
    }
    const model = (await import('../src/model/index.js')) as Record<string, unknown>;
    for (const name of ['GraphIndex', 'FeatureReuseSession', 'float16Bits', 'probeTensorShapes'])
      assert.equal(model[name], undefined, `rediffuse/model leaks ${name}`);
    const metrics = (await import('../src/metrics/index.js')) as Record<string, unknown>;
    for (const name of ['symmetricEigen', 'mmdUnbiased', 'loadFashionMnist', 'loadReferenceStatistics'])
      assert.equal(metrics[name], undefined, `rediffuse/metrics leaks ${name}`);
  });

  test('the CLI, the bench and the web page import the library only through its public entries', () => {
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
        d.isDirectory() ? files(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
      );
    const layer = /from '((?:\.\.\/)+(?:src\/)?(?:core|model|metrics|node|io)\/[^']+)'/g;
    const entries = /(?:^|\/)(?:core|model|metrics|node)\/index\.js$|(?:^|\/)src\/index\.js$|^(?:\.\.\/)+index\.js$/;
    const offenders: string[] = [];
    for (const file of [...files('src/cli'), ...files('src/bench'), ...files('web').filter((f) => !f.includes('dist')), ...files('bench')]) {
      for (const m of readFileSync(file, 'utf8').matchAll(layer)) if (!entries.test(m[1]!)) offenders.push(`${file} imports ${m[1]}`);
    }
    assert.deepEqual(offenders, []);
  });
});

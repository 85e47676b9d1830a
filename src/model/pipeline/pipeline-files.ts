/**
 * How a pipeline folder is read: an injected reader of files by their path inside the folder
 * (`unet/model.onnx`, `tokenizer/vocab.json`), so the same loader runs on Node's file system
 * (`rediffuse/node`'s `nodePipelineReader`) and in a browser (`fetchPipelineReader` over a URL, or a
 * reader over files the user picked).
 * @packageDocumentation
 */

/** Reads the files of one pipeline folder by relative path (`/`-separated). */
export interface PipelineFileReader {
  /** A name for the folder, used in error messages (its path or URL). */
  readonly label: string;
  /** Whether the file exists. */
  exists(path: string): Promise<boolean>;
  /** The file's bytes; rejects when it is missing or unreadable. */
  readBytes(path: string): Promise<Uint8Array>;
  /** The file's text (UTF-8). */
  readText(path: string): Promise<string>;
  /**
   * The path onnxruntime opens itself, when the folder is on a file system (so weights in external
   * data files such as `model.onnx_data` load next to the model); absent: the bytes are passed.
   */
  pathOf?(path: string): string;
}

/** The subset of `fetch` a {@link fetchPipelineReader} uses. */
export type FetchLike = (
  url: string,
  init?: { method?: string },
) => Promise<{ ok: boolean; status: number; arrayBuffer(): Promise<ArrayBuffer>; text(): Promise<string> }>;

/** A reader of a pipeline folder served over HTTP at `baseUrl` (browser-safe). */
export function fetchPipelineReader(baseUrl: string, fetchFn: FetchLike = globalThis.fetch as unknown as FetchLike): PipelineFileReader {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const get = async (path: string, method = 'GET') => {
    const res = await fetchFn(base + path, { method });
    if (!res.ok && method === 'GET') throw new Error(`${base + path}: HTTP ${res.status}; check the pipeline folder URL`);
    return res;
  };
  return {
    label: base,
    exists: async (path) => (await fetchFn(base + path, { method: 'HEAD' }).catch(() => ({ ok: false }))).ok,
    readBytes: async (path) => new Uint8Array(await (await get(path)).arrayBuffer()),
    readText: async (path) => (await get(path)).text(),
  };
}

/** A reader over files held in memory (e.g. picked with `<input type="file" webkitdirectory>`), keyed by relative path. */
export function memoryPipelineReader(files: ReadonlyMap<string, Uint8Array>, label = '(files)'): PipelineFileReader {
  const need = (path: string) => {
    const f = files.get(path);
    if (!f) throw new Error(`${label}: ${path} is missing from the pipeline folder`);
    return f;
  };
  return {
    label,
    exists: async (path) => files.has(path),
    readBytes: async (path) => need(path),
    readText: async (path) => new TextDecoder().decode(need(path)),
  };
}

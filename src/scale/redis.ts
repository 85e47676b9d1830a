/**
 * The `--queue redis://[USER:PASSWORD@]HOST[:PORT][/DB]` address: parsed and checked before any
 * model loads, and probed once with a short timeout so an unreachable Redis is an error in seconds
 * rather than a client that waits forever.
 * @packageDocumentation
 */
import { Redis } from 'ioredis';

/** The connection settings of a `--queue` URL. */
export interface RedisTarget {
  url: string;
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
}

/** A `--queue` value that is not a Redis URL, or a Redis that cannot be reached. */
export class QueueUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueueUrlError';
  }
}

/** Parse a `redis://` or `rediss://` URL (port 6379 and database 0 by default). */
export function parseRedisUrl(url: string): RedisTarget {
  const fix = 'use redis://HOST:PORT (e.g. redis://127.0.0.1:6379), optionally redis://:PASSWORD@HOST:PORT/DB';
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new QueueUrlError(`--queue "${url}" is not a URL: ${fix}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new QueueUrlError(`--queue "${url}": the scheme must be redis:// or rediss://, not ${u.protocol}//; ${fix}`);
  if (!u.hostname) throw new QueueUrlError(`--queue "${url}" names no host: ${fix}`);
  const port = u.port === '' ? 6379 : Number(u.port);
  const path = u.pathname.replace(/^\//, '');
  const db = path === '' ? 0 : Number(path);
  if (!Number.isInteger(db) || db < 0 || db > 15 || !/^\d*$/.test(path))
    throw new QueueUrlError(`--queue "${url}": the database must be a number 0–15, got "${path}"`);
  if (u.search || u.hash) throw new QueueUrlError(`--queue "${url}": query and fragment are not understood; ${fix}`);
  return {
    url,
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    tls: u.protocol === 'rediss:',
  };
}

/** The connection settings BullMQ and ioredis take. */
export interface RedisConnectionOptions {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: Record<string, never>;
  maxRetriesPerRequest: null;
  retryStrategy: (times: number) => number;
}

/** ioredis options of a target; `maxRetriesPerRequest: null` as BullMQ requires, so a Redis restart is waited out. */
export function connectionOptions(t: RedisTarget): RedisConnectionOptions {
  return {
    host: t.host,
    port: t.port,
    db: t.db,
    ...(t.username ? { username: t.username } : {}),
    ...(t.password ? { password: t.password } : {}),
    ...(t.tls ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
    // Reconnect every 0.1–1 s for as long as it takes (a restart of Redis is survived).
    retryStrategy: (times: number) => Math.min(100 * times, 1000),
  };
}

/** Connect once, PING, and disconnect; throws {@link QueueUrlError} with the cause within `timeoutMs`. */
export async function probeRedis(t: RedisTarget, timeoutMs = 3000): Promise<void> {
  const client = new Redis({
    ...connectionOptions(t),
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => {}); // reported through connect()'s rejection
  try {
    const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref());
    await Promise.race([client.connect().then(() => client.ping()), timer]);
  } catch (e) {
    throw new QueueUrlError(
      `cannot reach Redis at ${t.host}:${t.port} (${(e as Error).message}): start redis-server there (e.g. redis-server --port ${t.port} --appendonly yes) or fix --queue`,
    );
  } finally {
    client.disconnect();
  }
}

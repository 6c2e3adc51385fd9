/**
 * vitest globalSetup: a real HTTP server on 127.0.0.1 standing in for a backend outside
 * Workers (a URL backend). It echoes what it received, like test/fixtures/echo-worker.js.
 */
import { createServer, type Server } from 'node:http';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    upstreamUrl: string;
  }
}

let server: Server | undefined;

export async function setup(project: TestProject): Promise<void> {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name: 'url-backend', method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() }));
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('upstream server has no port');
  project.provide('upstreamUrl', `http://127.0.0.1:${addr.port}`);
}

export async function teardown(): Promise<void> {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
}

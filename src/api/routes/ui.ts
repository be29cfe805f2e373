import { existsSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/**
 * Where the built UI is: `dist/ui` of the package, whether this file runs compiled (dist/api/routes) or from
 * source through tsx (src/api/routes, in development and tests).
 */
export function uiDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = join(here, '..', '..', '..');
  return here.split(sep).includes('dist') ? join(here, '..', '..', 'ui') : join(root, 'dist', 'ui');
}

/** The web UI at /ui/: its files, and index.html for every client-side route (a single-page app). */
export async function uiRoutes(app: FastifyInstance, dir = uiDir()): Promise<void> {
  const built = existsSync(join(dir, 'index.html'));
  app.get('/', (_req, reply) => reply.redirect('/ui/'));
  if (!built) {
    app.get('/ui/*', (_req, reply) =>
      reply
        .status(503)
        .type('text/plain; charset=utf-8')
        .send(`The web UI is not built (no ${dir}). Run \`npm run build\` in the cosmos package.`),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/ui/',
    // Hashed asset names can be cached for good; index.html must not be.
    setHeaders: (res, path) => {
      void res.header(
        'cache-control',
        path.includes(`${sep}assets${sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
      );
    },
    wildcard: false,
  });
  app.get('/ui', (_req, reply) => reply.redirect('/ui/'));
  app.get('/ui/*', (_req, reply) => reply.header('cache-control', 'no-cache').sendFile('index.html', dir));
}

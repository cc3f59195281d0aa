// The console's browser assets (one script, one stylesheet), built by scripts/build.mjs into
// dist/console/ with a content hash in each name. Served from a fixed list — the build's
// manifest — with a one-year immutable cache: a changed file has another name.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Request, Response } from 'express';

export interface ConsoleAssets {
  /** URL paths of the script, stylesheet and icon, or undefined when the assets were not built. */
  script: string | undefined;
  style: string | undefined;
  icon: string | undefined;
  serve(req: Request, res: Response): void;
}

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.txt': 'text/plain; charset=utf-8' };

/** The repository (or installed package) root: where package.json is, from source or from dist/. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

export const assetsDir = (): string => path.join(packageRoot(), 'dist', 'console');

export function loadAssets(dir = assetsDir()): ConsoleAssets {
  let manifest: Record<string, string> = {};
  try {
    manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, string>;
  } catch {
    manifest = {};
  }
  const files = new Map<string, Buffer>();
  for (const name of Object.values(manifest)) {
    if (!/^[\w.-]+$/.test(name)) continue;
    try {
      files.set(name, readFileSync(path.join(dir, name)));
    } catch {
      /* listed but missing: answered 404 */
    }
  }
  const url = (key: string) => (manifest[key] && files.has(manifest[key]) ? `/console/assets/${manifest[key]}` : undefined);
  return {
    script: url('main.js'),
    style: url('main.css'),
    icon: url('favicon.svg'),
    serve(req, res) {
      const name = String(req.params.file ?? '');
      const body = files.get(name);
      if (!body) {
        res.status(404).type('text/plain').send('not found\n');
        return;
      }
      res.set('Cache-Control', 'public, max-age=31536000, immutable');
      res.set('Content-Type', TYPES[path.extname(name)] ?? 'application/octet-stream');
      res.send(body);
    },
  };
}

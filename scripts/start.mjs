#!/usr/bin/env node
// `npm start`: build dist/ if its sources changed, then run `credbroker dev` in this same process
// (npm runs this script with `exec`, so a signal to npm reaches the broker, which stops its children).
// Extra arguments go to `credbroker dev` (`npm start -- --port 9090`).
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from './build.mjs';

build();
const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'server', 'src', 'cli.js');
process.argv = [process.argv[0], cli, 'dev', ...process.argv.slice(2)];
await import(pathToFileURL(cli).href);

// @ts-check
// Files: private (0600), atomic writes through an O_EXCL temp file with a random name, renamed
// over the target; appends for files the CI owns ($GITHUB_ENV, $BASH_ENV).
import fs from 'node:fs';
import path from 'node:path';
import { ClientError, EXIT } from './errors.mjs';

// ---------------------------------------------------------------------------------------------
// Files: private, atomic writes; append for CI-owned files
// ---------------------------------------------------------------------------------------------
export const outputError = (file, e) => new ClientError(EXIT.OUTPUT, `cannot write ${file}: ${e && e.code ? e.code : e instanceof Error ? e.message : 'error'}`);

/** Random hex from Web Crypto (a global, loaded on first use), so no import of node:crypto at start. */
const randomHex = (bytes) => Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(bytes))).toString('hex');

/** Writes `content` to `file` with mode 0600 via a temp file + rename, so no reader sees a partial file. */
export function writePrivateFile(file, content) {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomHex(6)}.tmp`);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    try {
      fs.writeFileSync(fd, content);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* nothing to clean */
    }
    throw outputError(file, e);
  }
}

export function readIfExists(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e && e.code === 'ENOENT') return '';
    throw outputError(file, e);
  }
}

/** Appends to a file the CI owns ($GITHUB_ENV, $BASH_ENV); a file we create is 0600. */
export function appendPrivate(file, content) {
  try {
    fs.appendFileSync(file, content, { mode: 0o600 });
  } catch (e) {
    throw outputError(file, e);
  }
}

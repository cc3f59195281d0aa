import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The project's venv (scripts/ensure-venv.sh): moto server, the AWS CLI and schemathesis live here. */
export const venvDir =
  process.env.CREDBROKER_VENV ?? process.env.CREDBROKER_TEST_VENV ?? fileURLToPath(new URL('../../.venv', import.meta.url));

export const venvBin = (name: string): string => path.join(venvDir, 'bin', name);

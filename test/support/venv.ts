import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The venv created by ensure-venv.sh: moto server and the AWS CLI live here. */
export const venvDir =
  process.env.CREDBROKER_TEST_VENV ?? fileURLToPath(new URL('../../.venv-test', import.meta.url));

export const venvBin = (name: string): string => path.join(venvDir, 'bin', name);

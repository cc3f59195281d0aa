// Runs once before all test files: makes sure the Python venv with the stand-ins exists,
// so individual files can start their own moto server quickly, and builds the console's browser
// assets (dist/console), which brokers started from source serve.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const script = fileURLToPath(new URL('../../scripts/ensure-venv.sh', import.meta.url));
  execFileSync('bash', [script], { stdio: 'inherit' });
  execFileSync(process.execPath, [fileURLToPath(new URL('../../scripts/build.mjs', import.meta.url)), '--console'], { stdio: 'inherit' });
}

// The real broker in its own process, built as `credbroker serve` builds it, from the compiled
// dist/ (as production runs it; not through tsx): the store from the config's `store:` section,
// createBroker with no replaced adapters (STS client from config, audit to stdout, JSON logs on
// stderr at the configured level, metrics), the public listener. The harness sends stdout/stderr
// to /dev/null and runs `node scripts/build.mjs` first.
import { readFileSync } from 'node:fs';
import { parseConfig } from '../dist/server/src/config/load.js';
import { createBroker } from '../dist/server/src/broker.js';
import { openStore } from '../dist/server/src/store/index.js';

const { config } = parseConfig(readFileSync(process.argv[2], 'utf8'), process.argv[2]);
const store = await openStore(config.store);
const broker = createBroker(config, { ops: store });
await broker.start();
if (!broker.verifier().ready) throw new Error('issuer keys not loaded');
const { url } = await broker.listen(0, '127.0.0.1');
process.send?.({ ready: true, url });
process.on('disconnect', () => {
  void broker
    .close()
    .then(() => store.close())
    .finally(() => process.exit(0));
});

// @ts-check
// Entry point of client/credbroker-client.mjs (the bundle of these modules).
import { main } from './main.mjs';

main().then((code) => {
  process.exitCode = code;
});

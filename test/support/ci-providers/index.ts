// Local stand-ins for CI providers' token protocols (../../fixtures/ci-tokens/README.md).
export * from './server.js';
export * from './github.js';
export * from './buildkite.js';
export * from './azure.js';
export * from './circleci.js';

// A sink is a place a CI system reads the static key from. Delivering writes both variables;
// preflight checks what can be checked without writing (token present, target reachable) so that
// a misconfigured sink fails before a key is created.
import type { NewAccessKey } from '../secret.js';

export interface Sink {
  /** Stable id: rotation state records which sinks confirmed the new key by this id. */
  readonly id: string;
  readonly type: 'github' | 'gitlab' | 'circleci' | 'travis' | 'command';
  preflight(signal?: AbortSignal): Promise<void>;
  deliver(key: NewAccessKey, signal?: AbortSignal): Promise<void>;
}

export interface SinkContext {
  /** Where token_env names are looked up. */
  env: NodeJS.ProcessEnv;
  /** Per-request timeout for HTTP sinks. */
  timeoutMs: number;
}

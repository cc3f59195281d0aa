// A sink is a place a CI system reads the static key from. Delivering writes both variables;
// preflight checks what can be checked without writing (token present, target reachable) so that
// a misconfigured sink fails before a key is created.
import type { NewAccessKey } from '../secret.js';
import type { Network } from '../../net/network.js';

/**
 * What bounds one push. `deadline` (epoch ms, this host's clock) lies before the rotation lease
 * expires: an HTTP sink starts no request after it and aborts the one in flight at it; a command
 * sink's process group is killed at it by a watchdog that does not depend on the broker process
 * (which may be frozen or dead by then). `signal` aborts earlier (shutdown, lease lost).
 */
export interface PushFence {
  signal?: AbortSignal;
  deadline?: number;
}

export interface Sink {
  /** Stable id: rotation state records which sinks confirmed the new key by this id. */
  readonly id: string;
  readonly type: 'github' | 'gitlab' | 'circleci' | 'travis' | 'command';
  preflight(signal?: AbortSignal): Promise<void>;
  deliver(key: NewAccessKey, fence?: PushFence): Promise<void>;
}

export interface SinkContext {
  /** Where token_env names are looked up. */
  env: NodeJS.ProcessEnv;
  /** Per-request timeout for HTTP sinks. */
  timeoutMs: number;
  /** Egress proxy and CA bundles for HTTP sinks; default: the environment's proxy, the system's CAs. */
  network?: Network | undefined;
}

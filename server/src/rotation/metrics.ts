// Prometheus metrics for rotation, registered on the Registry handed in (never the global one).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface RotationMetrics {
  steps: Counter<'step' | 'outcome'>;
  runs: Counter<'result'>;
  runDuration: Histogram<never>;
  lastRun: Gauge<never>;
  leader: Gauge<never>;
  userError: Gauge<'user'>;
  keyAge: Gauge<'user'>;
  keys: Gauge<'user' | 'status'>;
}

const cache = new WeakMap<Registry, RotationMetrics>();

export function rotationMetrics(registry: Registry): RotationMetrics {
  const hit = cache.get(registry);
  if (hit) return hit;
  const registers = [registry];
  const m: RotationMetrics = {
    steps: new Counter({ name: 'credbroker_rotation_steps_total', help: 'Rotation steps performed, by step and outcome (ok|failed).', labelNames: ['step', 'outcome'], registers }),
    runs: new Counter({ name: 'credbroker_rotation_runs_total', help: 'Rotation runs, by result (ok|partial|not_leader|failed).', labelNames: ['result'], registers }),
    runDuration: new Histogram({ name: 'credbroker_rotation_run_duration_seconds', help: 'Duration of a rotation run.', buckets: [0.1, 1, 5, 15, 60, 300, 900], registers }),
    lastRun: new Gauge({ name: 'credbroker_rotation_last_run_timestamp_seconds', help: 'When the last rotation run finished.', registers }),
    leader: new Gauge({ name: 'credbroker_rotation_leader', help: '1 while this process holds the rotation lock.', registers }),
    userError: new Gauge({ name: 'credbroker_rotation_user_error', help: '1 while a user is in the error state (a human must look).', labelNames: ['user'], registers }),
    keyAge: new Gauge({ name: 'credbroker_rotation_key_age_seconds', help: 'Age of the oldest Active access key of a managed user.', labelNames: ['user'], registers }),
    keys: new Gauge({ name: 'credbroker_rotation_keys', help: 'Access keys of a managed user, by status.', labelNames: ['user', 'status'], registers }),
  };
  cache.set(registry, m);
  return m;
}

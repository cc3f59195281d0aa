// The Kubernetes manifests in deploy/kubernetes: valid against the Kubernetes API schemas (the
// kubernetes-validate package bundles them, so no cluster and no download is needed), strict about
// unknown fields, and carrying the properties that matter — two replicas across zones, non-root,
// read-only root filesystem, a disruption budget, IRSA, and a config the broker loads.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { venvBin } from '../support/venv.js';

const DIR = path.resolve(import.meta.dirname, '../../deploy/kubernetes');
const kustomization = parse(readFileSync(path.join(DIR, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
const files = kustomization.resources.map((f) => path.join(DIR, f));
const manifests = Object.fromEntries(files.map((f) => [path.basename(f, '.yaml'), parse(readFileSync(f, 'utf8')) as Record<string, any>]));
const deployment = manifests.deployment!;
const pod = deployment.spec.template.spec;
const broker = pod.containers[0];

const validate = (version: string, paths: string[]) =>
  spawnSync(venvBin('kubernetes-validate'), ['--strict', '--no-warn', '-k', version, ...paths], { encoding: 'utf8', timeout: 60_000 });

describe('deploy/kubernetes', () => {
  it('lists every manifest of the folder in its kustomization', () => {
    const here = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(here.sort());
  });

  it.each(['1.30.0', '1.37.0'])('passes the Kubernetes %s schemas, strictly (no unknown field)', (version) => {
    const r = validate(version, files);
    expect(r.stdout + r.stderr).not.toMatch(/ERROR|failed/i);
    expect(r.status).toBe(0);
    expect(r.stdout.match(/ passed /g)).toHaveLength(files.length);
  });

  it('would catch a misspelt field (the check is not a formality)', () => {
    const bad = path.join(mkdtempSync(path.join(tmpdir(), 'credbroker-k8s-')), 'deployment.yaml');
    writeFileSync(bad, readFileSync(path.join(DIR, 'deployment.yaml'), 'utf8').replace('readOnlyRootFilesystem', 'readOnlyRootFileSystem'));
    const r = validate('1.30.0', [bad]);
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/readOnlyRootFileSystem/);
  });

  it('runs two replicas or more, spread over zones, never fewer during a rollout', () => {
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(manifests.horizontalpodautoscaler!.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    expect(pod.topologySpreadConstraints[0]).toMatchObject({ topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule' });
  });

  it('runs non-root on a read-only root filesystem, without capabilities or privilege escalation', () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } });
    expect(broker.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      privileged: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(broker.volumeMounts).toEqual([{ name: 'config', mountPath: '/etc/credbroker', readOnly: true }]);
    expect(broker.image).toMatch(/@sha256:[0-9a-f]{64}$/);
    expect(manifests.namespace!.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('keeps a replica through voluntary disruptions', () => {
    const pdb = manifests.poddisruptionbudget!.spec;
    expect(pdb.selector.matchLabels).toEqual(deployment.spec.template.metadata.labels);
    expect(pdb.minAvailable).toBeGreaterThanOrEqual(1);
    expect(pdb.minAvailable).toBeLessThan(deployment.spec.replicas);
  });

  it('exposes the public API only, through a Service that selects the pods', () => {
    const svc = manifests.service!.spec;
    expect(svc.selector).toEqual(deployment.spec.template.metadata.labels);
    expect(svc.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);
    expect(broker.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    expect(manifests.networkpolicy!.spec.ingress).toEqual([{ ports: [{ port: 8080, protocol: 'TCP' }] }]);
  });

  it('runs as the broker identity through IRSA, with no Kubernetes API token', () => {
    const sa = manifests.serviceaccount!;
    expect(sa.metadata.annotations['eks.amazonaws.com/role-arn']).toMatch(/^arn:aws:iam::\d{12}:role\/credbroker-system\/credbroker-broker$/);
    expect(sa.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBe(sa.metadata.name);
    expect(pod.automountServiceAccountToken).toBe(false);
  });

  it('gives in-flight exchanges time to finish on SIGTERM', () => {
    const config = parse(manifests.configmap!.data['config.yaml']) as { server: { request_timeout_ms?: number } };
    const drainSeconds = (config.server.request_timeout_ms ?? 15_000) / 1000 + 2;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(broker.lifecycle.preStop.sleep.seconds + drainSeconds);
  });

  it('carries a config the broker loads, with every placeholder filled from the Secret', () => {
    const text: string = manifests.configmap!.data['config.yaml'];
    const placeholders = [...text.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]!);
    expect(placeholders.length).toBeGreaterThan(0);
    const hmacEnv = (parse(text) as { audit: { hmac_key_env: string } }).audit.hmac_key_env;
    for (const name of [...placeholders, hmacEnv]) expect(Object.keys(manifests.secret!.stringData)).toContain(name);
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'credbroker-k8s-')), 'config.yaml');
    writeFileSync(file, text);
    const env = Object.fromEntries([...placeholders, hmacEnv].map((n) => [n, 'c'.repeat(64)]));
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', 'config', 'validate', '--config', file], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, ...env },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

// A minimal STS responder speaking the real AWS Query protocol (XML), for failure modes moto
// cannot produce: throttling, 5xx, AccessDenied, validation errors. Used only where noted.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';

export type StsBehaviour =
  | { kind: 'ok' }
  | { kind: 'error'; status: number; code: string; type?: 'Sender' | 'Receiver' }
  | { kind: 'partial' };

export interface FakeSts {
  endpoint: string;
  requests: URLSearchParams[];
  /** Behaviour for the next requests, consumed in order; the last one repeats. */
  script: StsBehaviour[];
  latencyMs: number;
  close(): Promise<void>;
}

const errorXml = (code: string, type: string) =>
  `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>${type}</Type><Code>${code}</Code><Message>injected ${code}</Message></Error><RequestId>${randomBytes(8).toString('hex')}</RequestId></ErrorResponse>`;

function okXml(params: URLSearchParams, partial: boolean): string {
  const exp = new Date(Date.now() + Number(params.get('DurationSeconds') ?? 3600) * 1000).toISOString();
  const arn = params.get('RoleArn') ?? '';
  const session = params.get('RoleSessionName') ?? '';
  const assumed = arn.replace(':iam::', ':sts::').replace(/:role\/(?:.*\/)?([^/]+)$/, ':assumed-role/$1') + `/${session}`;
  // Credentials are random per response: they are fakes, never valid anywhere.
  const secret = partial ? '' : `<SecretAccessKey>${randomBytes(30).toString('base64')}</SecretAccessKey>`;
  return `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<SourceIdentity>${params.get('SourceIdentity') ?? ''}</SourceIdentity>
<AssumedRoleUser><Arn>${assumed}</Arn><AssumedRoleId>AROAFAKE:${session}</AssumedRoleId></AssumedRoleUser>
<Credentials><AccessKeyId>ASIAFAKE${randomBytes(6).toString('hex').toUpperCase()}</AccessKeyId>${secret}<SessionToken>${randomBytes(64).toString('base64')}</SessionToken><Expiration>${exp}</Expiration></Credentials>
</AssumeRoleResult><ResponseMetadata><RequestId>${randomBytes(8).toString('hex')}</RequestId></ResponseMetadata></AssumeRoleResponse>`;
}

export async function startFakeSts(): Promise<FakeSts> {
  const sts: FakeSts = { endpoint: '', requests: [], script: [{ kind: 'ok' }], latencyMs: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const params = new URLSearchParams(body);
      sts.requests.push(params);
      const behaviour = sts.script.length > 1 ? sts.script.shift()! : sts.script[0]!;
      const send = () => {
        if (behaviour.kind === 'error') {
          res.writeHead(behaviour.status, { 'content-type': 'text/xml' });
          res.end(errorXml(behaviour.code, behaviour.type ?? (behaviour.status >= 500 ? 'Receiver' : 'Sender')));
        } else {
          res.writeHead(200, { 'content-type': 'text/xml' });
          res.end(okXml(params, behaviour.kind === 'partial'));
        }
      };
      if (sts.latencyMs > 0) setTimeout(send, sts.latencyMs);
      else send();
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  sts.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sts.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return sts;
}

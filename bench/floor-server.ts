// The "work floor": the ceiling (bench/ceiling-server.ts) plus the work no broker can skip — a jose
// verification of the same OIDC token against the issuer's keys, and SigV4 signing of the STS call
// with AWS's own signer. The broker's CPU above this floor is what its code can still win; below
// the plain ceiling is only what HTTP in and out costs.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../server/src/aws/sts-query.js';

const [stsUrl, issuerUrl, audience] = process.argv.slice(2) as [string, string, string];
const upstream = new URL(stsUrl);
const agent = new http.Agent({ keepAlive: true, maxSockets: 128 }); // as the broker's STS client
const pick = (xml: string, tag: string) => new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)?.[1];
const signer = new SignatureV4({ service: 'sts', region: 'us-east-1', credentials: { accessKeyId: 'AKIDBENCHONLY0000000', secretAccessKey: 'bench-secret-not-real' }, sha256: NodeSha256 });

const discovery = (await (await fetch(`${issuerUrl}/.well-known/openid-configuration`)).json()) as { jwks_uri: string };
const keys = createLocalJWKSet((await (await fetch(discovery.jwks_uri)).json()) as JSONWebKeySet);

async function assumeRole(role: string): Promise<string> {
  const body = `Action=AssumeRole&Version=2011-06-15&RoleArn=${encodeURIComponent(`arn:aws:iam::123456789012:role/${role}`)}&RoleSessionName=bench&DurationSeconds=3600`;
  const signed = await signer.sign({
    method: 'POST',
    protocol: upstream.protocol,
    hostname: upstream.hostname,
    port: Number(upstream.port),
    path: '/',
    query: {},
    headers: { host: upstream.host, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) },
    body,
  });
  return new Promise((resolve, reject) => {
    const req = http.request(upstream, { method: 'POST', agent, headers: signed.headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve(text));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const app = express();
app.post('/v1/credentials', express.json(), async (req, res) => {
  try {
    const token = /^Bearer (\S+)$/.exec(req.get('authorization') ?? '')?.[1] ?? '';
    await jwtVerify(token, keys, { issuer: issuerUrl, audience, algorithms: ['RS256', 'ES256'] });
    const xml = await assumeRole(String((req.body as { role?: unknown }).role));
    res.set('Cache-Control', 'no-store').json({
      AccessKeyId: pick(xml, 'AccessKeyId'),
      SecretAccessKey: pick(xml, 'SecretAccessKey'),
      SessionToken: pick(xml, 'SessionToken'),
      Expiration: pick(xml, 'Expiration'),
    });
  } catch {
    res.status(401).json({ error: 'token' });
  }
});
const server = http.createServer(app);
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.send?.({ ready: true, url: `http://127.0.0.1:${port}` });
});
process.on('disconnect', () => process.exit(0));

// A minimal STS AssumeRole responder for benchmarks, in its own process: answers every POST with a
// valid Query-protocol XML document after a fixed delay. Deliberately cheap (no XML parsing, a
// template and a counter) so its own cost does not dominate what is measured. It times itself, from
// the request's first byte to the end of its answer, so the harness can subtract its latency.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { percentile } from './lib.js';

let latencyMs = Number(process.argv[2] ?? 10);
let served = 0;
let times: number[] = [];
const secret = randomBytes(30).toString('base64');
const sessionToken = randomBytes(256).toString('base64');

function xml(n: number): string {
  const exp = new Date(Date.now() + 3600_000).toISOString();
  const id = `ASIABENCH${n.toString(16).toUpperCase().padStart(11, '0')}`;
  return `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><SourceIdentity>bench</SourceIdentity><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/deploy/bench-${n}</Arn><AssumedRoleId>AROABENCH:bench-${n}</AssumedRoleId></AssumedRoleUser><Credentials><AccessKeyId>${id}</AccessKeyId><SecretAccessKey>${secret}</SecretAccessKey><SessionToken>${sessionToken}</SessionToken><Expiration>${exp}</Expiration></Credentials></AssumeRoleResult><ResponseMetadata><RequestId>bench-${n}</RequestId></ResponseMetadata></AssumeRoleResponse>`;
}

const server = http.createServer((req, res) => {
  const started = process.hrtime.bigint();
  req.resume();
  req.on('end', () => {
    const n = ++served;
    const send = () => {
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(xml(n));
      // Bounded: keeps at most the last 200 000 timings.
      if (times.length < 200_000) times.push(Number(process.hrtime.bigint() - started) / 1e6);
    };
    if (latencyMs > 0) setTimeout(send, latencyMs);
    else send();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.send?.({ ready: true, url: `http://127.0.0.1:${port}` });
});

process.on('message', (m: { cmd: string; ms?: number }) => {
  if (m.cmd === 'reset') {
    times = [];
    served = 0;
    process.send?.({ ok: true });
  } else if (m.cmd === 'latency') {
    latencyMs = m.ms ?? latencyMs;
    process.send?.({ ok: true });
  } else if (m.cmd === 'stats') {
    const sorted = [...times].sort((a, b) => a - b);
    process.send?.({ served, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) });
  }
});
process.on('disconnect', () => process.exit(0));

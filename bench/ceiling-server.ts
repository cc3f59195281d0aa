// The ceiling for "one request in, one STS call out": a bare Express endpoint that parses the same
// JSON body, makes one POST to the same STS responder over a keep-alive pool of the same size the
// broker's STS client uses (128 sockets), picks the credentials out of the XML and answers JSON.
// No token verification, policy, audit, logging or metrics — what is left when all of that costs
// nothing.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';

const upstream = new URL(process.argv[2] ?? 'http://127.0.0.1:1');
const agent = new http.Agent({ keepAlive: true, maxSockets: 128 }); // as the broker's STS client
const pick = (xml: string, tag: string) => new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)?.[1];

function assumeRole(role: string): Promise<string> {
  const body = `Action=AssumeRole&Version=2011-06-15&RoleArn=${encodeURIComponent(`arn:aws:iam::123456789012:role/${role}`)}&RoleSessionName=bench&DurationSeconds=3600`;
  return new Promise((resolve, reject) => {
    const req = http.request(
      upstream,
      { method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve(text));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const app = express();
app.post('/v1/credentials', express.json(), async (req, res) => {
  try {
    const xml = await assumeRole(String((req.body as { role?: unknown }).role));
    res.set('Cache-Control', 'no-store').json({
      AccessKeyId: pick(xml, 'AccessKeyId'),
      SecretAccessKey: pick(xml, 'SecretAccessKey'),
      SessionToken: pick(xml, 'SessionToken'),
      Expiration: pick(xml, 'Expiration'),
    });
  } catch {
    res.status(503).json({ error: 'upstream' });
  }
});
const server = http.createServer(app);
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.send?.({ ready: true, url: `http://127.0.0.1:${port}` });
});
process.on('disconnect', () => process.exit(0));

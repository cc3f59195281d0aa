// The image's HEALTHCHECK (and the ECS task's health check): GET /healthz on the broker's public
// listener inside the container; exit 0 when it answers 200, 1 otherwise. The image has no shell
// and no curl, so this runs on the image's node.
//   CREDBROKER_HEALTHCHECK_URL   default http://127.0.0.1:8080/healthz (match server.port)
// An https URL is allowed only to a loopback address, and its certificate is not verified there:
// the probe never leaves the container, sends nothing secret, and only asks whether the process
// answers (the certificate is for the broker's public name, not for 127.0.0.1).
import http from 'node:http';
import https from 'node:https';

const url = new URL(process.env.CREDBROKER_HEALTHCHECK_URL || 'http://127.0.0.1:8080/healthz');
const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
if (url.protocol === 'https:' && !loopback) {
  process.stderr.write(`healthcheck: an https URL must name a loopback address, not ${url.hostname}\n`);
  process.exit(1);
}
const client = url.protocol === 'https:' ? https : http;
const req = client.get(url, { timeout: 2500, agent: false, ...(url.protocol === 'https:' ? { rejectUnauthorized: false } : {}) }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (err) => {
  process.stderr.write(`healthcheck: ${err.message}\n`);
  process.exit(1);
});

// Idle keep-alive connections stay open for server.keep_alive_timeout_ms (default 65 s, above an
// ALB's 60 s idle timeout), so the client side closes them first and never sends a request on a
// connection the broker is closing (that race showed as ECONNRESET under load at the old 5 s).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';

let issuer: TestIssuer;
beforeAll(async () => {
  issuer = await startIssuer();
});
afterAll(async () => issuer?.close());

/** A raw HTTP/1.1 connection (no client-side idle timer): requests /healthz, reports when the server closes. */
async function rawConnection(url: string) {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => socket.once('connect', () => resolve()).once('error', reject));
  let closedAt = 0;
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString()));
  socket.once('close', () => (closedAt = Date.now()));
  const health = async () => {
    const before = received.length;
    socket.write(`GET /healthz HTTP/1.1\r\nHost: ${hostname}\r\nConnection: keep-alive\r\n\r\n`);
    for (let i = 0; i < 100 && !/"status":"ok"/.test(received.slice(before)); i++) await new Promise((r) => setTimeout(r, 20));
    return received.slice(before);
  };
  return { health, closedAt: () => closedAt, destroy: () => socket.destroy() };
}

describe('keep-alive', () => {
  let tb: TestBroker;
  afterAll(async () => tb?.close());

  it('keeps an idle connection open for keep_alive_timeout_ms, then closes it', async () => {
    tb = await startTestBroker({ issuer, config: { server: { keep_alive_timeout_ms: 1500 } } });
    const conn = await rawConnection(tb.url);
    try {
      expect(await conn.health()).toMatch(/^HTTP\/1\.1 200[\s\S]*Keep-Alive: timeout=1/i);
      const idleFrom = Date.now();
      await new Promise((r) => setTimeout(r, 1000));
      expect(conn.closedAt()).toBe(0);
      expect(await conn.health()).toMatch(/^HTTP\/1\.1 200/); // the same connection, still served
      const idleAgain = Date.now();
      await new Promise((r) => setTimeout(r, 2500));
      expect(conn.closedAt()).toBeGreaterThan(idleAgain + 1400);
      expect(idleFrom).toBeLessThan(idleAgain);
    } finally {
      conn.destroy();
    }
  });

  it('defaults to 65 s, above the 60 s idle timeout of a load balancer', async () => {
    const other = await startTestBroker({ issuer });
    try {
      expect(other.broker.config().server.keep_alive_timeout_ms).toBe(65_000);
    } finally {
      await other.close();
    }
  });
});

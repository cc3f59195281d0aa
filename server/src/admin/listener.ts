// Where the admin listener may bind. Without server.tls it speaks plain HTTP, and bearer tokens on an
// open network can be sniffed: loopback only, unless the operator opts in and is warned.
import { isIP } from 'node:net';

/** True for `localhost`, 127.0.0.0/8, ::1 and IPv4-mapped loopback; false for anything else (hostnames included). */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) {
    if (h === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(h)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

export const INSECURE_ADMIN_WARNING =
  'INSECURE: the admin API listens on a non-loopback address over plain HTTP: admin bearer tokens and audit data cross the network unencrypted. Put it behind a TLS-terminating proxy on a private network, or bind it to 127.0.0.1.';

/** Why the admin listener may not bind to `host`, or undefined when it may. */
export function adminListenerProblem(host: string, allowInsecure: boolean): string | undefined {
  if (isLoopbackHost(host) || allowInsecure) return undefined;
  return `${JSON.stringify(host)} is not a loopback address, and the admin API has no TLS: bind it to 127.0.0.1, configure server.tls, or set admin.allow_insecure_non_loopback: true to accept plain HTTP on the network (the broker then warns at every start)`;
}

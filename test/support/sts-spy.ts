// Wraps the real STS adapter to count calls, so rejection tests can prove STS was never reached.
import type { AssumeRoleRequest, CredentialIssuer, IssuedCredentials } from '../../server/src/aws/sts.js';

export class CountingIssuer implements CredentialIssuer {
  calls: AssumeRoleRequest[] = [];
  constructor(private readonly inner: CredentialIssuer) {}
  assumeRole(req: AssumeRoleRequest, signal?: AbortSignal): Promise<IssuedCredentials> {
    this.calls.push(req);
    return this.inner.assumeRole(req, signal);
  }
  runsOnTemporaryCredentials(): Promise<boolean> {
    return this.inner.runsOnTemporaryCredentials();
  }
}

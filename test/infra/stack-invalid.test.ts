// A bad stack config stops the program before any resource exists, with every problem listed.
import { expect, it } from 'vitest';
import * as pulumi from '@pulumi/pulumi';
import { installMocks } from './pulumi-mocks.js';
import { asRuntimeConfig } from './stack-config.js';
import { InfraSettingsError } from '../../infra/settings.js';

it('refuses a bad stack config with all its problems and creates nothing', async () => {
  const world = await installMocks();
  pulumi.runtime.setAllConfig(
    asRuntimeConfig({
      'credbroker:targetRolePath': '/',
      'credbroker:roles': { deploy: { sessionTags: { ref: '{ref}' }, transitiveTagKeys: ['repository_id'] } },
      'credbroker:revocation': 'true',
    }),
  );
  const failure = await import('../../infra/index.js').then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(failure).toBeInstanceOf(InfraSettingsError);
  expect((failure as InfraSettingsError).problems).toEqual([
    expect.stringMatching(/^targetRolePath: must not be "\/"/),
    expect.stringMatching(/^roles\.deploy\.transitiveTagKeys\[0\]: "repository_id" is not a key of sessionTags/),
  ]);
  expect(world.registrations).toEqual([]);
});

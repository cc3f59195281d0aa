// Placeholder: the static-key rotation section of the config (issue 4) is defined here.
import { z } from 'zod';

export const rotationConfigSchema = z.strictObject({}).describe('Static IAM user key rotation.');
export type RotationConfig = z.output<typeof rotationConfigSchema>;

import { z } from 'zod';

/** The authorizer's environment: the identity provider the tenant routes trust and the gate key. */
export const Env = z.object({
  JWT_ISSUER: z.url(),
  JWT_AUDIENCE: z.string().min(1),
  /** The gate-key secret tickets are signed with (lib/tenant-guard/gate-key.ts). */
  GATE_KEY_SECRET_ARN: z.string().startsWith('arn:'),
  /** The files role the authorizer assumes per verified organisation. @default - tenant files not wired */
  FILES_ROLE_ARN: z.string().startsWith('arn:').optional(),
});
export type Env = z.infer<typeof Env>;

import * as z from 'zod/mini';
// English issue messages in `Env.parse`'s error.
import '../shared/validation';

/** The authorizer's environment: the identity provider the tenant routes trust and the gate key. */
export const Env = z.object({
  JWT_ISSUER: z.url(),
  JWT_AUDIENCE: z.string().check(z.minLength(1)),
  /** The gate-key secret tickets are signed with (lib/tenant-guard/gate-key.ts). */
  GATE_KEY_SECRET_ARN: z.string().check(z.startsWith('arn:')),
  /** The files role the authorizer assumes per verified organisation. @default - tenant files not wired */
  FILES_ROLE_ARN: z.optional(z.string().check(z.startsWith('arn:'))),
});
export type Env = z.infer<typeof Env>;

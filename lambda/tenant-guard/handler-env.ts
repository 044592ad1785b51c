import { z } from 'zod';

/** The identity provider the tenant routes trust, validated at cold start. */
export const Env = z.object({
  JWT_ISSUER: z.url(),
  JWT_AUDIENCE: z.string().min(1),
});
export type Env = z.infer<typeof Env>;

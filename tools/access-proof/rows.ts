/**
 * The shape of an access-proof row. The tables themselves are `must-allow.ts` and `must-deny.ts`.
 *
 * Strings in `resource` and `context` may name things of the synthesized stage:
 *   `${Path}`          ARN of the resource (or role) at that construct path (relative to the stage)
 *   `${Path|name}`     its name (CloudFormation `Ref` for names); `${Path|region}` its region
 *   `${account}`, `${region}`, `${deployment}` the stage's (placeholder) account, home region, name
 *   `${org:X}`         the id of sample organisation X (`A` or `B`)
 *   `${dbuser:NAME}`   the `rds-db:connect` resource of database user NAME through the stage's RDS Proxy
 *   `${tenant-key:X}`  a tenant key created at runtime for sample organisation X (`A` or `B`); its key
 *                      policy and tags come from `lambda/tenant-keys/key-policy.ts`, as the provisioner
 *                      writes them
 */

export type Who =
  /** A role of the stage, by construct path. */
  | { readonly role: string }
  /** An AWS service principal (with `aws:SourceArn`/`aws:SourceAccount` in `context`, as it sends them). */
  | { readonly service: string }
  /** A principal of the account with `Action: *` on `Resource: *`: what resource policies still deny it. */
  | { readonly administrator: true }
  /**
   * Every role of the stage. Allowed if any role is. A role holding an AWS managed policy whose document
   * the harness does not have must be listed in `unevaluated` with the reason that is safe, or the row fails.
   */
  | { readonly everyRole: true; readonly unevaluated?: Readonly<Record<string, string>> };

export interface AccessRow {
  /** Stable id; the test and the docs name rows by it. */
  readonly id: string;
  readonly who: Who;
  readonly action: string;
  readonly resource: string;
  /**
   * Construct path of the resource whose policy governs `resource`, when the ARN does not say
   * (a recovery point belongs to a vault). @default the stage resource with that ARN
   */
  readonly resourcePolicyOf?: string;
  /** Request context keys beyond those derived from principal and resource (tags, account, TLS). */
  readonly context?: Readonly<Record<string, string | readonly string[]>>;
  /** The design decision the row proves. */
  readonly why: string;
  /**
   * Set when the expected verdict depends on a change made on another branch (named here): the row
   * is reported as pending instead of failing until that change is merged.
   */
  readonly pendingOn?: string;
}

export type Verdict = 'allow' | 'deny';

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
 *   `${cloudformation-responses}` ARN of CloudFormation's (AWS-owned) custom-resource response bucket in
 *                      the stage's home region (`cloudformation-custom-resource-response-<region without dashes>`)
 *
 * A resource outside the stage's account (another account's bucket, key, secret, ...) is assumed to have a
 * resource policy that admits everyone: the worst case, so only the caller's side (identity and endpoint
 * policies) can refuse. Name its account in `context` (`aws:ResourceAccount`) when its ARN does not hold one.
 */

export type Who =
  /** A role of the stage, by construct path. */
  | { readonly role: string }
  /** An AWS service principal (with `aws:SourceArn`/`aws:SourceAccount` in `context`, as it sends them). */
  | { readonly service: string }
  /**
   * A principal with `Action: *` on `Resource: *`: what resource and endpoint policies still deny it. Of the
   * stage's account, or of `account` (credentials an attacker brings into a compromised function).
   */
  | { readonly administrator: true; readonly account?: string }
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
  /**
   * The network the request is sent from. A role of a function in a VPC sends from that VPC by default:
   * its code calls AWS through the VPC endpoint of the action's service, so the endpoint's policy is
   * evaluated too (and a service the VPC has no endpoint for has no network path: deny). `outsideVpc` says
   * why AWS, not the function's code, sends it (Lambda shipping its logs or dead letters, a client using a
   * link the function signed). Requests with `kms:ViaService` (a service calling KMS) and `rds-db:connect`
   * (a token the RDS Proxy checks, never sent to an AWS API) are outside the VPC without saying so.
   * `insideVpcOf` (a role path) sends another principal's request from that function's VPC: credentials
   * brought into the compromised function, or a URL another principal pre-signed.
   * @default the role's own VPC for a role of an in-VPC function, otherwise no VPC
   */
  readonly network?: { readonly outsideVpc: string } | { readonly insideVpcOf: string };
  /** The design decision the row proves. */
  readonly why: string;
  /**
   * Set when the expected verdict depends on a change made on another branch (named here): the row
   * is reported as pending instead of failing until that change is merged.
   */
  readonly pendingOn?: string;
}

export type Verdict = 'allow' | 'deny';

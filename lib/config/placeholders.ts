/**
 * Values the shipped catalogue holds until an operator supplies real ones. A deployment synthesized for
 * a real account must not carry any of them (README "Accounts"); with the placeholder account they only
 * earn a note in the synth summary.
 */

/** Placeholder account. Real accounts are supplied at deploy time (README "Accounts"). */
export const PLACEHOLDER_ACCOUNT = '000000000000';

/** Certificate id of the catalogue's placeholder certificates. */
export const PLACEHOLDER_CERTIFICATE_ID = '00000000-0000-4000-8000-000000000000';

/** A placeholder ACM certificate ARN in `region`. */
export function placeholderCertificateArn(region: string): string {
  return `arn:aws:acm:${region}:${PLACEHOLDER_ACCOUNT}:certificate/${PLACEHOLDER_CERTIFICATE_ID}`;
}

// Names reserved for documentation and tests (RFC 2606, RFC 6761): nobody can own them.
const RESERVED_DOMAIN = /(^|\.)(example\.(com|net|org)|example|test|invalid|localhost)$/i;
const ACM_ARN_PARTS = /^arn:aws:acm:([a-z0-9-]+):(\d{12}):certificate\/([0-9a-f-]{36})$/;

export function isPlaceholderDomain(domain: string): boolean {
  return RESERVED_DOMAIN.test(domain);
}

export function isPlaceholderEmail(email: string): boolean {
  return isPlaceholderDomain(email.slice(email.lastIndexOf('@') + 1));
}

/** Region, account and id of an ACM certificate ARN, or undefined when it is not one. */
export function certificateParts(arn: string): { region: string; account: string; id: string } | undefined {
  const m = ACM_ARN_PARTS.exec(arn);
  return m ? { region: m[1] as string, account: m[2] as string, id: m[3] as string } : undefined;
}

export function isPlaceholderCertificate(arn: string): boolean {
  const parts = certificateParts(arn);
  return parts !== undefined && (parts.account === PLACEHOLDER_ACCOUNT || parts.id === PLACEHOLDER_CERTIFICATE_ID);
}

/** The fields of a deployment that a placeholder check looks at. */
export interface PlaceholderCandidate {
  readonly account: string;
  readonly edge: {
    readonly domainName: string;
    readonly certificateArn: string;
    readonly cloudFrontCertificateArn?: string | undefined;
  };
  readonly alarms: { readonly email: string };
}

/** Every field of `d` that still holds a placeholder, as a field path (`edge.certificateArn`). */
export function placeholderFields(d: PlaceholderCandidate): string[] {
  const out: string[] = [];
  if (d.account === PLACEHOLDER_ACCOUNT) out.push('account');
  if (isPlaceholderDomain(d.edge.domainName)) out.push('edge.domainName');
  if (isPlaceholderCertificate(d.edge.certificateArn)) out.push('edge.certificateArn');
  if (d.edge.cloudFrontCertificateArn !== undefined && isPlaceholderCertificate(d.edge.cloudFrontCertificateArn)) {
    out.push('edge.cloudFrontCertificateArn');
  }
  if (isPlaceholderEmail(d.alarms.email)) out.push('alarms.email');
  return out;
}

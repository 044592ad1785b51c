import { CONTROLS } from '../../tools/controls/controls';
import { esc, renderReview, type ReviewInput } from '../../tools/review/html';
import { iamSummary, show } from '../../tools/review/iam-summary';
import { CfnResource } from 'aws-cdk-lib';
import { buildReview } from '../../scripts/review';
import { CONTROL_TOWER_GATE_CONTEXT } from '../../lib/compliance';
import { buildTestStages } from '../support/cdk';
import { CATALOGUE_NAMES } from '../support/catalogue';

describe('IAM summary', () => {
  const template = {
    Resources: {
      Fn: {
        Type: 'AWS::Lambda::Function',
        Properties: { Role: { 'Fn::GetAtt': ['FnRole', 'Arn'] } },
        Metadata: { 'aws:cdk:path': 'dep/Api/Fn/Resource' },
      },
      FnRole: {
        Type: 'AWS::IAM::Role',
        Properties: {
          ManagedPolicyArns: [
            {
              'Fn::Join': [
                '',
                ['arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole'],
              ],
            },
          ],
        },
      },
      FnPolicy: {
        Type: 'AWS::IAM::Policy',
        Properties: {
          Roles: [{ Ref: 'FnRole' }],
          PolicyDocument: {
            Statement: [
              {
                Effect: 'Allow',
                Action: ['kms:Decrypt'],
                Resource: '*',
                Condition: { StringEquals: { 'kms:EncryptionContext:org_id': 'x' } },
              },
              {
                Effect: 'Allow',
                Action: 's3:GetObject',
                Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': ['Bucket', 'Arn'] }, '/*']] },
              },
            ],
          },
        },
      },
      OtherPolicy: {
        Type: 'AWS::IAM::Policy',
        Properties: {
          Roles: [{ Ref: 'OtherRole' }],
          PolicyDocument: { Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] },
        },
      },
    },
  };

  it('lists the statements attached to each function’s role, and only those', () => {
    expect(iamSummary('dep-Api', template)).toEqual([
      {
        stack: 'dep-Api',
        path: 'dep/Api/Fn/Resource',
        managedPolicies: ['arn:AWS::Partition:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole'],
        statements: [
          {
            effect: 'Allow',
            actions: ['kms:Decrypt'],
            resources: ['*'],
            condition: { StringEquals: { 'kms:EncryptionContext:org_id': 'x' } },
          },
          { effect: 'Allow', actions: ['s3:GetObject'], resources: ['Bucket.Arn/*'] },
        ],
      },
    ]);
  });

  it('heads a function without path metadata with its stack and logical id', () => {
    const { Fn, FnRole } = template.Resources;
    const bare = { Resources: { Fn: { ...Fn, Metadata: {} }, FnRole } };
    expect(iamSummary('dep-Api', bare).map((f) => f.path)).toEqual(['dep-Api/Fn']);
  });

  it('shows intrinsics compactly', () => {
    expect(show({ Ref: 'Key' })).toBe('Key');
    expect(show({ 'Fn::Sub': 'arn:${AWS::Partition}:x' })).toBe('arn:${AWS::Partition}:x');
  });
});

describe('npm run review', () => {
  let review: ReviewInput;
  let html: string;
  beforeAll(async () => {
    // cfn-guard over both deployments costs minutes; test/compliance/cfn-guard.test.ts covers that gate.
    review = await buildReview(new Date('2026-01-01T00:00:00Z'), { [CONTROL_TOWER_GATE_CONTEXT]: false });
    html = renderReview(review);
  });

  it('shows every access-proof row with its verdict, and none as not required', () => {
    expect(html).toContain('id="access-proof"');
    expect(review.accessProof.length).toBeGreaterThan(0);
    expect(review.accessProof.filter((r) => r.flipped).map((r) => `${r.stage} ${r.row.id}`)).toEqual([]);
    for (const r of review.accessProof) expect(html).toContain(`<code>${r.row.id}</code>`);
  });

  it('covers every deployment, with zero unacknowledged findings', () => {
    expect(review.deployments.map((d) => d.name)).toEqual(CATALOGUE_NAMES);
    expect(review.findings).toEqual([]);
  });

  it('renders one self-contained page with the matrix, acknowledgements, IAM and residency sections', () => {
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/<(script|link)\b/);
    for (const id of ['summary', 'controls', 'findings', 'acknowledgements', 'iam', 'residency']) {
      expect(html).toContain(`<section id="${id}">`);
    }
    for (const c of CONTROLS) expect(html).toContain(`<code>${esc(c.id)}</code>`);
    for (const a of review.acknowledgements) expect(html).toContain(esc(a.reason));
    // Every function is headed by its construct path, never the '?' of a template without paths.
    expect(review.functions.length).toBeGreaterThan(0);
    const stagePaths = review.deployments.map((d) => `${d.name}/`);
    expect(review.functions.map((f) => f.path).filter((p) => !stagePaths.some((s) => p.startsWith(s)))).toEqual([]);
    for (const f of review.functions) expect(html).toContain(esc(f.path));
    for (const r of review.residency) expect(html).toContain(`${esc(r.deployment)} (zone <code>${r.zone}</code>)`);
  });

  it('heads each function’s IAM summary with its construct path, one per function of the construct tree', () => {
    const { stages } = buildTestStages();
    const functions = stages.flatMap((stage) =>
      stage.node
        .findAll()
        .filter((c) => CfnResource.isCfnResource(c) && c.cfnResourceType === 'AWS::Lambda::Function')
        .map((c) => c.node.path),
    );
    expect(functions.length).toBeGreaterThan(0);
    expect(review.functions.map((f) => f.path).sort()).toEqual(functions.sort());
    for (const f of review.functions) expect(html).toContain(`<h3><code>${esc(f.path)}</code></h3>`);
  });

  it('opens with a one-screen summary: commit, deployments, gates with counts, top risks, access-proof totals', () => {
    const summary = html.slice(html.indexOf('<section id="summary">'), html.indexOf('</section>'));
    expect(summary).toMatch(/Commit <code>[0-9a-f]{40}(\+dirty)?<\/code>/);
    for (const d of review.deployments) {
      expect(summary).toContain(`<td>${esc(d.name)}</td><td>${esc(d.region ?? '?')}</td>`);
      for (const p of d.packs) expect(summary).toContain(`<code>${esc(p)}</code>`);
      const proof = review.accessProof.filter((r) => r.stage === d.name);
      const allowed = proof.filter((r) => r.expected === 'allow').length;
      expect(summary).toContain(`${allowed} allowed and ${proof.length - allowed} denied as required`);
    }
    expect(
      summary.match(/<h3>Top accepted risks<\/h3><table><thead>.*?<\/thead><tbody>(.*?)<\/tbody>/)?.[1]?.match(/<tr>/g),
    ).toHaveLength(5);
  });

  it('groups acknowledgements by rule and reason per deployment, collapsed, with every construct inside', () => {
    const section = html.slice(html.indexOf('<section id="acknowledgements">'), html.indexOf('<section id="iam">'));
    const groups = new Set(
      review.acknowledgements.map((a) => `${a.deployment} ${a.finding.replace(/\[.*$/, '')} ${a.reason}`),
    );
    expect(section.match(/<details>/g)).toHaveLength(groups.size);
    expect(groups.size).toBeLessThan(review.acknowledgements.length);
    for (const a of review.acknowledgements) expect(section).toContain(`<code>${esc(a.path)}</code>`);
  });

  it('draws the architecture diagram inline, as SVG', () => {
    const section = html.slice(html.indexOf('<section id="architecture">'));
    expect(section).toMatch(/^<section id="architecture"><h2>Architecture<\/h2><figure><svg /);
    expect(section).toContain('>RDS Proxy</text>');
  });

  it('never heads a function with "?" or anything but a construct path', () => {
    expect(html).not.toContain('<h3><code>?</code></h3>');
    for (const f of review.functions) expect(f.path).toMatch(/^[^?/]+(\/[^?/]+)+$/);
  });

  it('escapes text taken from the code', () => {
    expect(esc('<b a="1">&')).toBe('&lt;b a=&quot;1&quot;&gt;&amp;');
  });
});

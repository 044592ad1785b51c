import type { AcknowledgementRow } from '../../lib/compliance';
import {
  groupAcknowledgements,
  renderAcknowledgements,
  splitFinding,
  topAcceptedRisks,
} from '../../tools/compliance/acknowledgements';

const IAM5 = 'Only actions without resource-level permissions use "*".';
const DLQ = 'Invoked synchronously only; errors reach the caller.';
const rows: AcknowledgementRow[] = [
  { deployment: 'a', path: 'S/Fn/Policy/Resource', finding: 'AwsSolutions-IAM5[Resource::*]', reason: IAM5 },
  { deployment: 'a', path: 'S/Other/Policy/Resource', finding: 'AwsSolutions-IAM5[Resource::*]', reason: IAM5 },
  { deployment: 'a', path: 'S/Fn/Resource', finding: 'Serverless-LambdaDLQ', reason: DLQ },
  { deployment: 'b', path: 'S/Fn/Policy/Resource', finding: 'AwsSolutions-IAM5[Resource::*]', reason: IAM5 },
  { deployment: 'b', path: 'S/Fn/Resource', finding: 'Serverless-LambdaDLQ', reason: 'A different <reason> | here.' },
];

describe('acknowledgements grouped by rule and reason', () => {
  it('splits a granular finding into its rule and detail', () => {
    expect(splitFinding('AwsSolutions-IAM5[Resource::<Bucket.Arn>/*]')).toEqual({
      rule: 'AwsSolutions-IAM5',
      detail: 'Resource::<Bucket.Arn>/*',
    });
    expect(splitFinding('cdk-validator-cfnguard::sqs_dlq_check')).toEqual({
      rule: 'cdk-validator-cfnguard::sqs_dlq_check',
    });
  });

  it('groups per deployment, largest group first, and keeps different reasons apart', () => {
    const [a, b] = groupAcknowledgements(rows);
    expect(a).toMatchObject({ deployment: 'a', total: 3 });
    expect(a?.groups.map((g) => [g.rule, g.entries.length])).toEqual([
      ['AwsSolutions-IAM5', 2],
      ['Serverless-LambdaDLQ', 1],
    ]);
    expect(b?.groups.map((g) => g.reason)).toEqual([IAM5, 'A different <reason> | here.']);
    expect(topAcceptedRisks(rows, 1)).toEqual([
      {
        rule: 'AwsSolutions-IAM5',
        reason: IAM5,
        entries: [
          { path: 'S/Fn/Policy/Resource', detail: 'Resource::*' },
          { path: 'S/Other/Policy/Resource', detail: 'Resource::*' },
          { path: 'S/Fn/Policy/Resource', detail: 'Resource::*' },
        ],
      },
    ]);
  });

  it('renders collapsible groups with counts, a per-rule table and every construct', () => {
    const doc = renderAcknowledgements(rows);
    expect(doc).toContain('Total: 5 in 2 deployment(s).');
    expect(doc).toContain('| `AwsSolutions-IAM5` | 2 | 1 |');
    expect(doc).toContain(`<summary><code>AwsSolutions-IAM5</code> × 2: ${IAM5}</summary>`);
    expect(doc).toContain(
      '<summary><code>Serverless-LambdaDLQ</code> × 1: A different &lt;reason&gt; | here.</summary>',
    );
    expect(doc.match(/<details>/g)).toHaveLength(4);
    expect(doc).toContain('| `S/Other/Policy/Resource` | `Resource::*` |');
    expect(doc.indexOf('## a (3)')).toBeLessThan(doc.indexOf('## b (2)'));
  });
});

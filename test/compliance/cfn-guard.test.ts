import {
  ACCOUNT_BASELINE_GUARD_EXEMPTIONS,
  forwardingBaselineGuardExemptions,
} from '../../lib/detection/account-baseline';
import { App, Stack, Stage } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import {
  BULWARK_GUARD_EXEMPTIONS,
  CONTROL_TOWER_GATE_CONTEXT,
  CONTROL_TOWER_PLUGIN,
  applyComplianceGate,
  collectAcknowledgements,
  controlTowerRules,
  exemptGuardRule,
  readFindings,
} from '../../lib/compliance';
import { renderAcknowledgements } from '../../tools/compliance/acknowledgements';
import { customerKey } from '../../lib/observability/keys';
import { buildTestStages } from '../support/cdk';
import { EU } from '../support/catalogue';

/** Control Tower findings (rule, construct path) of a synthesized app. */
function guardFindings(app: App): string[] {
  try {
    app.synth();
  } catch {
    // A failing gate still writes its report.
  }
  return readFindings(app.outdir)
    .filter((f) => f.pack === CONTROL_TOWER_PLUGIN)
    .map((f) => `${f.rule} ${f.constructPath}`)
    .sort();
}

function fixture(context: Record<string, unknown> = {}) {
  const app = new App({ context: { '@aws-cdk/core:appMode': 'inmemory', ...context } });
  const stage = new Stage(app, 'ct');
  const stack = new Stack(stage, 'S', { env: { account: '123456789012', region: 'eu-west-1' } });
  return { app, stage, stack };
}

describe('Control Tower gate (cfn-guard)', () => {
  it('the bundled cfn-guard binary runs here, and knows the Control Tower rules', () => {
    const rules = controlTowerRules();
    expect(rules.has('kms_create_grant_aws_service_check')).toBe(true);
    expect(rules.has('sqs_dlq_check')).toBe(true);
    expect(rules.size).toBeGreaterThan(50);
  });

  it('fails a violating fixture, passes the exempted resource and lists the exemption like an acknowledgement', () => {
    const { app, stage, stack } = fixture();
    // A bare key has no create-grant Deny (CT.KMS.PR.3); customerKey has it.
    new kms.Key(stack, 'Bare');
    customerKey(stack, 'Guarded', 'fixture');
    // Two queues without a dead-letter queue (CT.SQS.PR.1): one exempted, one not.
    const exempted = new sqs.Queue(stack, 'Exempted');
    new sqs.Queue(stack, 'Plain');
    applyComplianceGate(stage, {
      controlTower: [{ path: 'S/Exempted', rule: 'sqs_dlq_check', reason: 'Fixture: a dead-letter queue itself.' }],
    });

    // (Other Control Tower rules flag the bare fixtures too; these two are the ones under test.)
    const underTest = guardFindings(app).filter((f) => /^(kms_create_grant_aws_service_check|sqs_dlq_check) /.test(f));
    expect(underTest).toEqual([
      'kms_create_grant_aws_service_check ct/S/Bare/Resource',
      'sqs_dlq_check ct/S/Plain/Resource',
    ]);
    const rows = collectAcknowledgements(app).filter((r) => r.finding.startsWith(CONTROL_TOWER_PLUGIN));
    expect(rows).toEqual([
      {
        deployment: 'ct',
        path: 'S/Exempted/Resource',
        finding: 'cdk-validator-cfnguard::sqs_dlq_check',
        reason: 'Fixture: a dead-letter queue itself.',
      },
    ]);
    const doc = renderAcknowledgements(rows);
    expect(doc).toContain(
      '<summary><code>cdk-validator-cfnguard::sqs_dlq_check</code> × 1: Fixture: a dead-letter queue itself.</summary>',
    );
    expect(doc).toContain('| `S/Exempted/Resource` |');
    // Recorded on the one resource, not on its parent or siblings.
    expect(exempted.node.defaultChild?.node.metadata.some((m) => m.type === 'bulwark:acknowledgement')).toBe(true);
  });

  it('refuses an unknown rule, a path that names nothing, and a path that is not one resource', () => {
    const { stage, stack } = fixture();
    const q = new sqs.Queue(stack, 'Q');
    expect(() => exemptGuardRule(q, 'sqs_no_such_check', 'Fixture reason long enough.')).toThrow(
      /not a Control Tower rule/,
    );
    expect(() =>
      applyComplianceGate(stage, {
        controlTower: [{ path: 'S/Gone', rule: 'sqs_dlq_check', reason: 'Fixture reason long enough.' }],
      }),
    ).toThrow(/no construct ct\/S\/Gone/);
    expect(() => exemptGuardRule(stack, 'sqs_dlq_check', 'Fixture reason long enough.')).toThrow(/stack/);
  });

  it('is off when the context says so (tests that do not examine it), and then applies no exemption', () => {
    const { app, stage, stack } = fixture({ [CONTROL_TOWER_GATE_CONTEXT]: false });
    new sqs.Queue(stack, 'Plain');
    const names = applyComplianceGate(stage, { controlTower: [] });
    expect(names).not.toContain(CONTROL_TOWER_PLUGIN);
    expect(guardFindings(app)).toEqual([]);
  });

  it('a shipped deployment passes it, with exactly the listed exemptions', () => {
    const { app, stages } = buildTestStages([EU.name], { controlTower: true });
    expect(stages[0]!.compliancePacks).toContain(CONTROL_TOWER_PLUGIN);
    app.synth();
    expect(readFindings(app.outdir)).toEqual([]);
    const exemptions = collectAcknowledgements(app).filter((r) => r.finding.startsWith(CONTROL_TOWER_PLUGIN));
    // prod-eu is production: the account baselines (home and backup region), and their exemptions, are there too.
    expect(exemptions).toHaveLength(
      BULWARK_GUARD_EXEMPTIONS.length +
        ACCOUNT_BASELINE_GUARD_EXEMPTIONS.length +
        forwardingBaselineGuardExemptions('BackupRegionBaseline').length,
    );
  });
});

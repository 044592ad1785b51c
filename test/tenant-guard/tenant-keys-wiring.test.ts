/**
 * The tenant API's wiring to the tenant keys in a shipped stage (prod-eu): exactly the IAM it needs
 * (invoke the provisioner; read exports/* and decrypt through S3), its environment, the keyless
 * sweep, and references that point one way only (Edge -> TenantKeys), so the stage has no cycle.
 * Building the templates synthesizes the stage, which runs the compliance gate.
 */
import { Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { readFindings } from '../../lib/compliance';
import { Env } from '../../lambda/tenant-guard/handler';
import { buildTestStages, templateOf } from '../support/cdk';
import { defined } from '../support/defined';
import { roleStatements } from '../support/deploy-order';
import { EU } from '../support/catalogue';

type Json = Record<string, unknown>;

describe('tenant API wired to the tenant keys (prod-eu)', () => {
  const { stages } = buildTestStages([EU.name]);
  const stage = defined(stages[0]);
  const keysStack = stage.tenantKeys;
  const keys = stage.tenantKeys.tenantKeys;
  const edge = stage.edge;
  const tk = templateOf(keysStack);
  const te = templateOf(edge);
  const apiFn = stage.tenantGuard.apiFunction;
  const apiId = edge.getLogicalId(apiFn.node.defaultChild as lambda.CfnFunction);
  const roleId = edge.getLogicalId(defined(apiFn.role).node.defaultChild as iam.CfnRole);
  const policyId = keysStack.getLogicalId(keys.apiAccessPolicy.node.defaultChild as iam.CfnManagedPolicy);
  const bucketId = keysStack.getLogicalId(keys.exportBucket.node.defaultChild as s3.CfnBucket);
  const keyId = keysStack.getLogicalId(keys.exportKey.node.defaultChild as kms.CfnKey);
  const provisionerId = keysStack.getLogicalId(keys.provisioner.node.defaultChild as lambda.CfnFunction);

  it('passes the compliance gate', () => {
    expect(readFindings(stage.outdir)).toEqual([]);
  });

  it('the API access policy grants exactly: invoke the provisioner, read exports/*, decrypt through S3', () => {
    const policy = tk.toJSON()['Resources'][policyId] as Json;
    const doc = (policy['Properties'] as Json)['PolicyDocument'] as Json;
    expect(doc['Statement']).toEqual([
      {
        Sid: 'InvokeTenantKeyProvisioner',
        Effect: 'Allow',
        Action: 'lambda:InvokeFunction',
        Resource: { 'Fn::GetAtt': [provisionerId, 'Arn'] },
      },
      {
        Sid: 'ReadTenantExports',
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, '/exports/*']] },
      },
      {
        Sid: 'DecryptTenantExportsThroughS3',
        Effect: 'Allow',
        Action: 'kms:Decrypt',
        Resource: { 'Fn::GetAtt': [keyId, 'Arn'] },
        Condition: { StringEquals: { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' } },
      },
    ]);
    // Attached by the API role (in the Edge stack), not by roles of this stack.
    expect((policy['Properties'] as Json)['Roles']).toBeUndefined();
  });

  it('the API role attaches it, and holds no other invoke, S3 read or export-key permission', () => {
    const role = te.toJSON()['Resources'][roleId] as Json;
    const arns = JSON.stringify((role['Properties'] as Json)['ManagedPolicyArns']);
    expect(arns).toContain(policyId);
    const resources = te.toJSON()['Resources'] as Record<string, Json>;
    const own = roleStatements(resources, resources[apiId]!);
    // Its own environment key, only as Lambda decrypts it (the function ARN as encryption context).
    const env = own.filter((st) => st['Sid'] === 'ReadEnvironment');
    expect(env).toEqual([
      expect.objectContaining({
        Action: 'kms:Decrypt',
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/^TenantGuardLogKey/), 'Arn'] },
        Condition: { StringLike: { 'kms:EncryptionContext:aws:lambda:FunctionArn': expect.any(String) } },
      }),
    ]);
    const inline = own.filter((st) => !env.includes(st));
    // Its only other KMS use is the tenant keys themselves (sealing webhook secrets), with an org_id context.
    const kms = inline.filter((st) => JSON.stringify(st['Action']).includes('kms:'));
    expect(kms.map((st) => st['Sid'])).toEqual(['UseTenantKeysOnlyWithAnOrgContext']);
    expect(defined(kms[0])['Condition']).toMatchObject({ Null: { 'kms:EncryptionContext:org_id': 'false' } });
    const all = JSON.stringify(inline.filter((st) => !kms.includes(st)));
    for (const action of ['lambda:InvokeFunction', 's3:GetObject', 'kms:Decrypt', 'lambda:*', 's3:*', 'kms:*']) {
      expect(all).not.toContain(`"${action}"`);
    }
  });

  it('the API learns the provisioner and the export bucket from its (validated) environment', () => {
    const vars = (te.toJSON()['Resources'][apiId] as Json)['Properties'] as Json;
    const env = (vars['Environment'] as { Variables: Json }).Variables;
    expect(JSON.stringify(env['PROVISIONER_FUNCTION'])).toContain(provisionerId);
    expect(JSON.stringify(env['EXPORT_BUCKET'])).toContain(bucketId);
    const base = {};
    expect(Env.safeParse({ ...base, PROVISIONER_FUNCTION: 'p', EXPORT_BUCKET: 'bulwark-exports' }).success).toBe(true);
    expect(Env.safeParse(base).success).toBe(true);
    expect(Env.safeParse({ ...base, PROVISIONER_FUNCTION: 'p' }).success).toBe(false);
    expect(Env.safeParse({ ...base, EXPORT_BUCKET: 'bulwark-exports' }).success).toBe(false);
    expect(Env.safeParse({ ...base, PROVISIONER_FUNCTION: 'p', EXPORT_BUCKET: 'Not_A_Bucket' }).success).toBe(false);
  });

  it('references point from Edge to TenantKeys only: no cycle', () => {
    expect(edge.dependencies.map((s) => s.node.id)).toContain('TenantKeys');
    expect(keysStack.dependencies.map((s) => s.node.id)).not.toContain('Edge');
    expect(JSON.stringify(tk.toJSON())).not.toContain(Stack.of(apiFn).stackName);
  });

  it('the provisioner sweeps for keyless tenants every 5 minutes, dead-lettered on failure', () => {
    tk.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [provisionerId, 'Arn'] },
          Input: '{"sweep":true}',
          RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 900 },
          DeadLetterConfig: Match.objectLike({ Arn: Match.anyValue() }),
        }),
      ],
    });
  });

  it('the tenant routes are behind the REQUEST authorizer', () => {
    const resources = te.findResources('AWS::ApiGateway::Resource');
    for (const part of ['tenant', 'organisations']) {
      const [id] = defined(Object.entries(resources).find(([, r]) => r['Properties']['PathPart'] === part));
      te.hasResourceProperties('AWS::ApiGateway::Method', {
        ResourceId: { Ref: id },
        HttpMethod: 'ANY',
        AuthorizationType: 'CUSTOM',
      });
    }
  });
});

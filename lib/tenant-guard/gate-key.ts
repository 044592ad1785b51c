/**
 * The gate key: the HMAC key the REQUEST authorizer signs gate tickets with and the database gate
 * verifies them with (lambda/tenant-guard/ticket.ts, migrations/0400). Readable only by the
 * functions granted here (the authorizer, and the migration function that installs it into
 * `app_private.gate_keys`); never by a function that connects to the database as an application role.
 */
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import { customerKey } from '../observability/keys';

export interface GateKeyProps {
  /** Key the secret is encrypted with. @default - a customer-managed key of its own */
  readonly encryptionKey?: kms.IKey;
}

export class GateKey extends Construct {
  /** `{"key": "<64 random characters>"}`; its kid is derived from the key. */
  public readonly secret: secretsmanager.ISecret;

  constructor(scope: Construct, id: string, props: GateKeyProps = {}) {
    super(scope, id);
    const secret = new secretsmanager.Secret(this, 'Secret', {
      description: 'Gate key: HMAC key of the tenant gate tickets (authorizer signs, database verifies)',
      encryptionKey: props.encryptionKey ?? customerKey(this, 'Key', 'Encrypts the tenant gate key'),
      generateSecretString: {
        secretStringTemplate: '{}',
        generateStringKey: 'key',
        passwordLength: 64,
        excludePunctuation: true,
        includeSpace: false,
      },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const rotation =
      'The gate key is rotated by changing the secret and redeploying: the migration function installs the new ' +
      'key into the database before the authorizer can sign with it, and the database keeps the previous key ' +
      'for ten minutes (docs/tenancy.md "Threat model"); a rotation Lambda would switch the authorizer to a key ' +
      'the database does not know yet.';
    for (const rule of [
      'AwsSolutions-SMG4',
      'HIPAA.Security-SecretsManagerRotationEnabled',
      'NIST.800.53.R5-SecretsManagerRotationEnabled',
    ]) {
      acknowledge(secret, rule, rotation);
    }
    this.secret = secret;
  }

  /**
   * The identity-policy statements that read the key, for the authorizer and the migration function
   * only. Written out rather than `secret.grantRead`, which would also edit the key's policy from the
   * reader's stack (a cross-stack cycle): identity-based grants suffice in one account.
   */
  readStatements(): iam.PolicyStatement[] {
    const key = this.secret.encryptionKey;
    return [
      new iam.PolicyStatement({
        sid: 'ReadGateKey',
        actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        resources: [this.secret.secretArn],
      }),
      ...(key
        ? [
            new iam.PolicyStatement({
              sid: 'DecryptGateKey',
              actions: ['kms:Decrypt'],
              resources: [key.keyArn],
              conditions: {
                StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` },
              },
            }),
          ]
        : []),
    ];
  }
}

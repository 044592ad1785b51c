import { AspectPriority, Aspects, Stack, Token, type IAspect } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';

/**
 * Every Lambda permission granted to an AWS service principal (API Gateway, EventBridge, ...) is
 * limited to this account's resources with `SourceAccount` (`aws:SourceAccount`): a source ARN alone
 * names a resource, not whose it is (confused deputy). One place for every permission, including
 * those CDK creates for integrations, authorizers and rule targets.
 */
export class LambdaPermissionsFromOwnAccount implements IAspect {
  public visit(node: IConstruct): void {
    if (!(node instanceof lambda.CfnPermission) || node.sourceAccount !== undefined) return;
    const principal = node.principal;
    if (Token.isUnresolved(principal) || !/\.amazonaws\.com(\.cn)?$/.test(principal)) return;
    node.sourceAccount = Stack.of(node).account;
  }
}

/** Applies {@link LambdaPermissionsFromOwnAccount} to every stack under `scope`. */
export function limitLambdaPermissionsToOwnAccount(scope: IConstruct): void {
  Aspects.of(scope).add(new LambdaPermissionsFromOwnAccount(), { priority: AspectPriority.MUTATING });
}

export { default as HstsPreload } from './HstsPreload';
export { default as LambdaDatabaseInVpc, type StageRule } from './LambdaDatabaseInVpc';
export { default as LambdaEnvironmentNoSecrets } from './LambdaEnvironmentNoSecrets';
export { default as ObjectLockCompliance, AUDIT_BUCKET_TAG, AUDIT_BUCKET_TAG_VALUE } from './ObjectLockCompliance';
export { default as RdsForceSsl } from './RdsForceSsl';
export { default as TenantKeyEncryptionContext } from './TenantKeyEncryptionContext';
export { default as WafRateBasedRule } from './WafRateBasedRule';

export * from './acknowledge';
export * from './gate';
export * from './report';
export * from './findings';
export * from './bulwark-pack';
export * from './rules';
export * from './cfn-guard';
export { HSTS_MAX_AGE_SECONDS, HSTS_VALUE } from '../../contracts/security-headers';

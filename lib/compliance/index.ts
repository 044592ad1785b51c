export * from './acknowledge';
export * from './gate';
export * from './report';
export * from './findings';
export * from './bulwark-pack';
export * from './bulwark-rules';
export * from './cfn-guard';

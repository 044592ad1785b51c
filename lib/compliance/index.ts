export * from './acknowledge';
export * from './gate';
export * from './report';
export * from './findings';

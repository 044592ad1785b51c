export * from './regions';
export * from './schema';
export * from './catalogue';
export * from './load';

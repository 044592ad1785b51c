export * from './regions';
export * from './placeholders';
export * from './schema';
export * from './catalogue';
export * from './load';
export * from './cells';

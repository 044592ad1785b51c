export * from './tenant-guard';

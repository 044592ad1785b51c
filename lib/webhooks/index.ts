export * from './webhook-ingress';

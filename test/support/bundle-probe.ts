// Bundles one BulwarkFunction for real into the directory given, for test/shared/bundling.test.ts,
// which runs this in a child process so that it can read what bundling prints.
import * as path from 'node:path';
import { App, Stack, Stage } from 'aws-cdk-lib';
import { cdkJsonContext } from '../../lib/app';
import { customerKey } from '../../lib/observability/keys';
import { BulwarkFunction } from '../../lib/shared/function';

const [outdir, sourceMap] = process.argv.slice(2);
const app = new App({ outdir, context: cdkJsonContext() });
const stage = new Stage(app, 'BundleProbe', { env: { account: '111111111111', region: 'eu-west-1' } });
const stack = new Stack(stage, 'S');
new BulwarkFunction(stack, 'Fn', {
  entry: path.join(__dirname, '..', '..', 'lambda', 'restore-drill', 'handler.ts'),
  description: 'bundling probe',
  invocation: { kind: 'synchronous', caller: 'a test' },
  reservedConcurrentExecutions: 1,
  encryptionKey: customerKey(stack, 'Key', 'test'),
  outsideVpc: 'A bundling probe outside the VPC, never deployed.',
  sourceMap: sourceMap === 'source-map',
});
stage.synth();

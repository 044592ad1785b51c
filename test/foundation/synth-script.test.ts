import { outputDirectory } from '../../bin/synth';

describe('npm run synth -- <flags>', () => {
  it('reads the summary from the directory cdk synth was told to write', () => {
    expect(outputDirectory(['-c', 'deployments=prod-eu'])).toBe('cdk.out');
    expect(outputDirectory(['-c', 'deployments=prod-eu', '-o', 'out/eu'])).toBe('out/eu');
    expect(outputDirectory(['--output', 'a'])).toBe('a');
    expect(outputDirectory(['--output=b', '-c', 'x=y'])).toBe('b');
  });
});

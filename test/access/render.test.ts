import type { AccessProofResult } from '../../tools/access-proof';
import { renderAccessProofSection } from '../../tools/access-proof/render';

const row = {
  id: 'x<y',
  who: { role: 'Edge/Role' },
  action: 's3:GetObject',
  resource: '${A/B}/k',
  why: 'a & b',
};

function result(stage: string, verdict: 'allow' | 'deny', r: AccessProofResult['row'] = row): AccessProofResult {
  return {
    row: r,
    stage,
    verdict,
    decidedBy: ['P Sid S'],
    expected: 'deny',
    flipped: verdict !== 'deny',
  };
}

describe('renderAccessProofSection', () => {
  it('marks a flipped row per deployment and escapes what rows say', () => {
    const out = renderAccessProofSection([result('one', 'deny'), result('two', 'allow')]);
    expect(out).toContain('<td class="ok" title="P Sid S">deny</td>');
    expect(out).toContain('<td class="flipped" title="P Sid S">allow (expected deny)</td>');
    expect(out).toContain('<code>x&lt;y</code>');
    expect(out).toContain('<td>a &amp; b</td>');
  });

  it('shows a row waiting for another branch as pending, not flipped', () => {
    const out = renderAccessProofSection([result('one', 'allow', { ...row, pendingOn: 'keyguard' })]);
    expect(out).toContain('<td class="pending" title="P Sid S">allow (pending: keyguard)</td>');
  });
});

// Regenerates docs/access-proof.md: `npm run docs:access`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MUST_ALLOW, MUST_DENY, evaluateAccessProof } from './index';
import { renderAccessProof } from './render';

export const ACCESS_PROOF_FILE = path.join(__dirname, '..', '..', 'docs', 'access-proof.md');

if (require.main === module) {
  void evaluateAccessProof().then((results) => {
    fs.writeFileSync(ACCESS_PROOF_FILE, renderAccessProof(results, MUST_ALLOW, MUST_DENY));
    console.log(`wrote ${path.relative(process.cwd(), ACCESS_PROOF_FILE)}`);
  });
}

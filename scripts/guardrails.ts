// Regenerates docs/guardrails.md from guardrails/*.json.
import * as fs from 'node:fs';
import { GUARDRAILS_DOC, renderGuardrails } from '../tools/guardrails/guardrails';

if (require.main === module) {
  fs.writeFileSync(GUARDRAILS_DOC, renderGuardrails());
  console.log('wrote docs/guardrails.md');
}

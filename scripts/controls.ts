// Regenerates docs/controls.md from lib/review/controls.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONTROLS } from '../lib/review/controls';
import { renderControls } from '../lib/review/render-controls';

export const CONTROLS_FILE = path.join(__dirname, '..', 'docs', 'controls.md');

if (require.main === module) {
  fs.writeFileSync(CONTROLS_FILE, renderControls(CONTROLS));
  console.log('wrote docs/controls.md');
}

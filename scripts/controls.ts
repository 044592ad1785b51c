// Regenerates docs/controls.md from tools/controls/controls.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONTROLS } from '../tools/controls/controls';
import { renderControls } from '../tools/controls/render';

export const CONTROLS_FILE = path.join(__dirname, '..', 'docs', 'controls.md');

if (require.main === module) {
  fs.writeFileSync(CONTROLS_FILE, renderControls(CONTROLS));
  console.log('wrote docs/controls.md');
}

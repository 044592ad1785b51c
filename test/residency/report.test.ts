import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderCurrentResidencyReports, RESIDENCY_DIR } from '../../scripts/residency-report';
import { residencyReport } from '../../tools/residency/report';
import { buildTestStages } from '../support/cdk';
import { CATALOGUE_NAMES, EU } from '../support/catalogue';

describe('generated residency reports', () => {
  const current = renderCurrentResidencyReports();

  it('exist for every deployment and are current (run `npm run docs:residency` after a change)', () => {
    expect([...current.keys()]).toEqual(CATALOGUE_NAMES);
    for (const [name, text] of current) {
      expect(fs.readFileSync(path.join(RESIDENCY_DIR, `${name}.md`), 'utf8')).toBe(text);
    }
  });

  it('lists every stack of the pinned EU deployment inside the EU', () => {
    const eu = current.get(EU.name) ?? '';
    const stackRows = eu.split('\n').filter((l) => l.startsWith(`| ${EU.name}-`));
    expect(stackRows.length).toBeGreaterThan(0);
    for (const row of stackRows) expect(row).toMatch(new RegExp(`\\| (${EU.region}|${EU.backupRegion}) \\| yes \\|$`));
  });

  it('lists each secret rotation application as allowed, with its us-east-1 code origin and the reason', () => {
    for (const [, text] of current) {
      const allowed = text.slice(text.indexOf('## Allowed outside the zone'));
      const rows = allowed.split('\n').filter((l) => l.includes('AWS::Serverless::Application'));
      // The master user's rotation and one per login role.
      expect(rows.length).toBeGreaterThanOrEqual(2);
      for (const row of rows)
        expect(row).toMatch(/\| us-east-1 \| Rotation code origin: .*No secret, data or log leaves the region\. \|$/);
    }
  });

  it('reports the copy vault, the audit replicas and their keys in the backup region, whatever the deployment is named', () => {
    const { stages } = buildTestStages();
    for (const stage of stages) {
      const report = residencyReport(stage, stage.deployment);
      const copies = report.dataStores.filter((r) => r.path.startsWith('BackupVault/'));
      // The copy vault and its key; the audit replicas: archive, trail, their access logs and key; the
      // monthly copy drill's alarm topic key and undelivered queue, log key and schedule dead letters.
      expect(copies.map((r) => r.kind).sort()).toEqual([
        'backup vault',
        'bucket',
        'bucket',
        'bucket',
        'encryption key',
        'encryption key',
        'encryption key',
        'encryption key',
        'queue',
        'queue',
      ]);
      for (const row of copies) expect(row.region).toBe(stage.deployment.backupRegion);
    }
  });
});

import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildTestStages } from '../support/cdk';
import {
  MUST_ALLOW,
  MUST_DENY,
  accessRows,
  evaluateAccessProof,
  evaluateRows,
  stageModel,
  type AccessProofResult,
} from '../../tools/access-proof';
import { ACCESS_PROOF_FILE } from '../../tools/access-proof/docs';
import { renderAccessProof } from '../../tools/access-proof/render';
import type { BulwarkStage } from '../../lib/bulwark-stage';
import type { EndpointModel, StageModel } from '../../tools/access-proof/model';

// Both shipped deployments, synthesized once (bundling off); every row is evaluated in each.
let stages: BulwarkStage[];
let results: AccessProofResult[];
beforeAll(async () => {
  const built = buildTestStages();
  built.app.synth();
  stages = built.stages;
  results = await evaluateAccessProof(stages);
}, 900_000);

describe('access proof', () => {
  it('has unique row ids', () => {
    const ids = accessRows().map(({ row }) => row.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it.each(accessRows().map(({ row, expected }) => [row.id, expected, row] as const))(
    '%s is %s in every deployment',
    (id, expected, row) => {
      const mine = results.filter((r) => r.row === row);
      expect(mine).toHaveLength(stages.length);
      for (const r of mine) {
        const decided = r.decidedBy.map((d) => `    ${d}`).join('\n');
        if (row.pendingOn) {
          // The fix lives on another branch: once merged the row holds, and the marker must go.
          if (!r.flipped) {
            throw new Error(`${id} (${r.stage}) now evaluates to ${expected}: remove its pendingOn (${row.pendingOn})`);
          }
          continue;
        }
        if (r.flipped) {
          throw new Error(`${id} (${r.stage}): expected ${expected}, got ${r.verdict}, decided by:\n${decided}`);
        }
      }
    },
  );

  it('reports the statement that flips a row', async () => {
    // Drop the archive bucket's DenyDeletion statement from a fresh model: an administrator could
    // then delete audit objects, and the result names the identity statement that allows it.
    const model = stageModel(stages[0]!);
    const bucket = [...model.resources.values()].find((r) => r.path === 'Audit/Archive/Archive/Bucket')!;
    const doc = bucket.policy!.document as { Statement: { Sid?: string }[] };
    bucket.policy = {
      ...bucket.policy!,
      document: { ...doc, Statement: doc.Statement.filter((s) => s.Sid !== 'DenyDeletion') },
    };
    const row = MUST_DENY.find((r) => r.id === 'administrator-deletes-archive-object')!;
    const [result] = await evaluateRows(model, [row]);
    expect(result!.verdict).toBe('allow');
    expect(result!.decidedBy.join('\n')).toContain('AdministratorAccess');
  });

  describe('VPC endpoint policies (issue 15)', () => {
    /** The model with each endpoint replaced by `change` (undefined removes it). */
    const withEndpoints = (model: StageModel, change: (e: EndpointModel) => EndpointModel | undefined): StageModel => ({
      ...model,
      endpoints: new Map(
        [...model.endpoints].map(([vpc, byService]) => [
          vpc,
          new Map(
            [...byService].flatMap(([service, e]) => {
              const changed = change(e);
              return changed ? [[service, changed] as const] : [];
            }),
          ),
        ]),
      ),
    });
    const row = (id: string) => [...MUST_ALLOW, ...MUST_DENY].find((r) => r.id === id)!;

    it('every in-VPC custom-resource function answers CloudFormation in a row', () => {
      for (const stage of stages) {
        const inVpc = stageModel(stage).customResourceFunctions.filter((f) => f.vpc !== undefined);
        expect(inVpc.length).toBeGreaterThan(0);
        for (const fn of inVpc) {
          const rows = MUST_ALLOW.filter(
            (r) =>
              r.resource.startsWith('${cloudformation-responses}/') &&
              r.network !== undefined &&
              'insideVpcOf' in r.network &&
              r.network.insideVpcOf === fn.role,
          );
          expect({ fn: fn.path, rows: rows.length }).toEqual({ fn: fn.path, rows: 1 });
        }
      }
    });

    it('every endpoint has a row refusing another account’s resource', () => {
      for (const stage of stages) {
        const services = [...stageModel(stage).endpoints.values()].flatMap((m) => [...m.keys()]);
        expect(services.length).toBeGreaterThan(0);
        for (const service of services) {
          expect(
            MUST_DENY.filter((r) => r.id.startsWith(`endpoint-${service}-refuses-foreign-`)).length,
          ).toBeGreaterThan(0);
        }
      }
    });

    it('the endpoint- rows are denied by the endpoint policy alone', async () => {
      // Without endpoint policies (AWS's default: admit everything) every one of them would be allowed.
      const open = withEndpoints(stageModel(stages[0]!), (e) => ({ ...e, policy: undefined }));
      const rows = MUST_DENY.filter((r) => r.id.startsWith('endpoint-'));
      expect(rows.length).toBeGreaterThan(10);
      for (const result of await evaluateRows(open, rows)) {
        expect({ id: result.row.id, verdict: result.verdict }).toEqual({ id: result.row.id, verdict: 'allow' });
      }
    });

    it('a function’s requests pass its endpoint: none, and it has no way out', async () => {
      const model = stageModel(stages[0]!);
      const noS3 = withEndpoints(model, (e) => (e.service === 's3' ? undefined : e));
      const [result] = await evaluateRows(noS3, [row('shipper-writes-archive')]);
      expect(result!.verdict).toBe('deny');
      expect(result!.decidedBy.join('\n')).toMatch(/no network path: .*no s3 endpoint/);
    });

    it('an endpoint policy without the CloudFormation statement would hang the deployment', async () => {
      const model = stageModel(stages[0]!);
      const strict = withEndpoints(model, (e) => {
        if (!e.policy) return e;
        const doc = e.policy.document as { Statement: { Sid?: string }[] };
        const Statement = doc.Statement.filter((st) => st.Sid !== 'CloudFormationCustomResourceResponses');
        return { ...e, policy: { ...e.policy, document: { ...doc, Statement } } };
      });
      const [result] = await evaluateRows(strict, [row('migrate-answers-cloudformation')]);
      expect(result!.verdict).toBe('deny');
      expect(result!.decidedBy.join('\n')).toContain('endpoint policy of Data/Network/Vpc/S3');
    });
  });

  it('docs/access-proof.md is current (run `npm run docs:access`)', () => {
    expect(fs.readFileSync(ACCESS_PROOF_FILE, 'utf8')).toBe(renderAccessProof(results, MUST_ALLOW, MUST_DENY));
  });
});

describe('iam-simulate stays a dev-only tool', () => {
  // AGPL-3.0: it must never be imported by code that is deployed (lib/ constructs, lambda/ bundles).
  const root = path.join(__dirname, '..', '..');
  const files = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const p = path.join(dir, e.name);
      return e.isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
    });

  it.each(['lib', 'lambda'])('no file under %s/ imports it or tools/access-proof', (dir) => {
    const offenders = files(path.join(root, dir)).filter((f) =>
      /from ['"][^'"]*(@cloud-copilot\/iam-simulate|tools\/access-proof)|require\(['"][^'"]*@cloud-copilot\/iam-simulate/.test(
        fs.readFileSync(f, 'utf8'),
      ),
    );
    expect(offenders).toEqual([]);
  });
});

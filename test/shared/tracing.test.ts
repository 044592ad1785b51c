/**
 * SDK-call tracing without the X-Ray SDK: real SDK clients (their own middleware stacks, a canned
 * HTTP handler instead of the network) produce one subsegment per call under the invocation's
 * segment, carry the trace header to the service, flag throttles, errors and faults, and send
 * nothing when the invocation is unsampled or the function runs outside Lambda.
 */
import { createSocket } from 'node:dgram';
import { Readable } from 'node:stream';
import { KMSClient, ListAliasesCommand } from '@aws-sdk/client-kms';
import { daemonAddress, createTracer, parseTraceHeader, type SdkCallSubsegment } from '../../lambda/shared/tracing';

const ROOT = '1-5759e988-bd862e3fe1be46a994272793';
const PARENT = '53995c3f42cd8ad8';
const LAMBDA_ENV = { AWS_LAMBDA_FUNCTION_NAME: 'fn' };

/** A KMS client whose HTTP handler answers `status` and records the requests it was sent. */
function kms(status: number, sent: { headers: Record<string, string> }[], errorType = 'ThrottlingException') {
  return new KMSClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' },
    maxAttempts: 2,
    retryMode: 'standard',
    requestHandler: {
      handle: (request: { headers: Record<string, string> }) => {
        sent.push({ headers: { ...request.headers } });
        const body = status < 300 ? '{"Aliases":[]}' : JSON.stringify({ __type: errorType, message: 'secret data' });
        return Promise.resolve({
          response: {
            statusCode: status,
            headers: { 'x-amzn-requestid': `req-${sent.length}`, 'content-type': 'application/x-amz-json-1.1' },
            body: Readable.from([Buffer.from(body)]),
          },
        });
      },
    } as never,
  });
}

function traced(header: string | undefined, env: Record<string, string | undefined> = LAMBDA_ENV) {
  const docs: SdkCallSubsegment[] = [];
  let t = 1_700_000_000_000;
  const tracer = createTracer({ env, traceHeader: () => header, emit: (d) => docs.push(d), clock: () => (t += 250) });
  return { tracer, docs };
}

describe('createTracer', () => {
  it('sends one subsegment per call under the invocation segment, and passes the trace on', async () => {
    const { tracer, docs } = traced(`Root=${ROOT};Parent=${PARENT};Sampled=1`);
    const sent: { headers: Record<string, string> }[] = [];
    const client = tracer.captureAWSv3Client(kms(200, sent));
    // Idempotent: capturing twice still gives one subsegment per call.
    tracer.captureAWSv3Client(client);
    await client.send(new ListAliasesCommand({}));
    expect(docs).toHaveLength(1);
    const doc = docs[0]!;
    expect(doc).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{16}$/),
      name: 'KMS',
      type: 'subsegment',
      trace_id: ROOT,
      parent_id: PARENT,
      start_time: 1_700_000_000.25,
      end_time: 1_700_000_000.5,
      namespace: 'aws',
      aws: { operation: 'ListAliases', region: 'eu-west-1', request_id: 'req-1', retries: 0 },
      http: { response: { status: 200 } },
    });
    expect(sent[0]?.headers['X-Amzn-Trace-Id']).toBe(`Root=${ROOT};Parent=${doc.id};Sampled=1`);
  });

  it('flags a throttled call (after its retries) with its class, never its message', async () => {
    const { tracer, docs } = traced(`Root=${ROOT};Parent=${PARENT};Sampled=1`);
    const sent: { headers: Record<string, string> }[] = [];
    const client = tracer.captureAWSv3Client(kms(400, sent));
    await expect(client.send(new ListAliasesCommand({}))).rejects.toMatchObject({ name: 'ThrottlingException' });
    expect(sent).toHaveLength(2);
    expect(docs).toHaveLength(1);
    expect(docs[0]).toMatchObject({
      aws: { operation: 'ListAliases', retries: 1 },
      http: { response: { status: 400 } },
      throttle: true,
      error: true,
      cause: { exceptions: [{ type: 'ThrottlingException' }] },
    });
    expect(docs[0]).not.toHaveProperty('fault');
    expect(JSON.stringify(docs)).not.toContain('secret data');
  });

  it('flags a server error as a fault', async () => {
    const { tracer, docs } = traced(`Root=${ROOT};Parent=${PARENT};Sampled=1`);
    const client = tracer.captureAWSv3Client(kms(500, [], 'KMSInternalException'));
    await expect(client.send(new ListAliasesCommand({}))).rejects.toMatchObject({ name: 'KMSInternalException' });
    expect(docs[0]).toMatchObject({ fault: true, http: { response: { status: 500 } } });
    expect(docs[0]).not.toHaveProperty('error');
  });

  it('sends nothing for an unsampled invocation, but tells the service it is unsampled', async () => {
    const { tracer, docs } = traced(`Root=${ROOT};Parent=${PARENT};Sampled=0`);
    const sent: { headers: Record<string, string> }[] = [];
    await tracer.captureAWSv3Client(kms(200, sent)).send(new ListAliasesCommand({}));
    expect(docs).toEqual([]);
    expect(sent[0]?.headers['X-Amzn-Trace-Id']).toMatch(new RegExp(`^Root=${ROOT};Parent=[0-9a-f]{16};Sampled=0$`));
  });

  it.each([
    ['outside Lambda', {}, `Root=${ROOT};Parent=${PARENT};Sampled=1`],
    ['with tracing disabled', { ...LAMBDA_ENV, POWERTOOLS_TRACE_ENABLED: 'false' }, `Root=${ROOT};Sampled=1`],
    ['without a trace header', LAMBDA_ENV, undefined],
  ])('leaves the client alone %s', async (_, env, header) => {
    const { tracer, docs } = traced(header, env);
    const sent: { headers: Record<string, string> }[] = [];
    await tracer.captureAWSv3Client(kms(200, sent)).send(new ListAliasesCommand({}));
    expect(docs).toEqual([]);
    expect(sent[0]?.headers).not.toHaveProperty('X-Amzn-Trace-Id');
  });

  it('sends to the daemon over UDP in its protocol (header line, then the document)', async () => {
    const daemon = createSocket('udp4');
    await new Promise<void>((resolve) => daemon.bind(0, '127.0.0.1', resolve));
    const received = new Promise<string>((resolve) => daemon.once('message', (m) => resolve(m.toString('utf8'))));
    try {
      const env = { ...LAMBDA_ENV, AWS_XRAY_DAEMON_ADDRESS: `127.0.0.1:${daemon.address().port}` };
      const tracer = createTracer({ env, traceHeader: () => `Root=${ROOT};Parent=${PARENT};Sampled=1` });
      await tracer.captureAWSv3Client(kms(200, [])).send(new ListAliasesCommand({}));
      const [header, body] = (await received).split('\n');
      expect(JSON.parse(header!)).toEqual({ format: 'json', version: 1 });
      expect(JSON.parse(body!)).toMatchObject({ name: 'KMS', trace_id: ROOT, parent_id: PARENT, type: 'subsegment' });
    } finally {
      daemon.close();
    }
  });
});

describe('parseTraceHeader and daemonAddress', () => {
  it('reads the header and the daemon address forms Lambda uses', () => {
    expect(parseTraceHeader(`Root=${ROOT};Parent=${PARENT};Sampled=1;Lineage=a:1`)).toEqual({
      Root: ROOT,
      Parent: PARENT,
      Sampled: '1',
      Lineage: 'a:1',
    });
    expect(parseTraceHeader(undefined)).toEqual({});
    expect(daemonAddress('169.254.79.129:2000')).toEqual({ host: '169.254.79.129', port: 2000 });
    expect(daemonAddress('tcp:127.0.0.1:3000 udp:127.0.0.2:2001')).toEqual({ host: '127.0.0.2', port: 2001 });
    expect(daemonAddress(undefined)).toEqual({ host: '127.0.0.1', port: 2000 });
  });
});

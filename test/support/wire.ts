/**
 * Counts what a pg client puts on its socket, so round trips are measured rather than assumed: a
 * round trip is a burst of writes that follows a read (the client sent, then waited for the
 * server), and every protocol Sync ('S', extended protocol) or Query ('Q', simple protocol)
 * message is one statement the server answers with ReadyForQuery.
 */
import type { Socket } from 'node:net';

export interface WireCount {
  /** Write bursts separated by the server's answers. */
  readonly roundTrips: number;
  /** Sync and Query messages sent: statements the server acknowledged one by one. */
  readonly statements: number;
}

export interface WireCounter {
  /** What was sent since the last `reset()`. */
  count(): WireCount;
  reset(): void;
}

const SYNC = 0x53;
const QUERY = 0x51;

/** Instruments a connected `pg` client (a `Client` or a pooled client) once; later calls reuse it. */
export function countWire(client: object): WireCounter {
  const tagged = client as { __wire?: WireCounter; connection: { stream: Socket } };
  if (tagged.__wire) return tagged.__wire;
  const stream = tagged.connection.stream;
  let roundTrips = 0;
  let statements = 0;
  let answered = true;
  // Messages may straddle writes: keep the bytes of an unfinished one.
  let pending = Buffer.alloc(0);
  const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
  (stream as unknown as { write: typeof write }).write = (chunk: unknown, ...rest: unknown[]) => {
    if (answered) {
      roundTrips++;
      answered = false;
    }
    if (Buffer.isBuffer(chunk)) {
      pending = Buffer.concat([pending, chunk]);
      let at = 0;
      while (pending.length - at >= 5) {
        const length = pending.readInt32BE(at + 1);
        if (pending.length - at < 1 + length) break;
        if (pending[at] === SYNC || pending[at] === QUERY) statements++;
        at += 1 + length;
      }
      pending = pending.subarray(at);
    }
    return write(chunk, ...rest);
  };
  stream.on('data', () => {
    answered = true;
  });
  const counter: WireCounter = {
    count: () => ({ roundTrips, statements }),
    reset: () => {
      roundTrips = 0;
      statements = 0;
    },
  };
  tagged.__wire = counter;
  return counter;
}

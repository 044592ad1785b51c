/**
 * An in-memory model of one DynamoDB table's UpdateItem, faithful to the semantics the tenant budget
 * relies on (docs/rate-limits.md "Per tenant"), for testing that logic for real without a network:
 *
 * - the ConditionExpression is evaluated against the item as stored (a missing item has no
 *   attributes); a comparison with a missing attribute, or between a number and a string, is false;
 *   a false condition throws ConditionalCheckFailedException and writes nothing;
 * - otherwise the UpdateExpression is applied (SET with `if_not_exists`, ADD of a number to a number
 *   or to nothing), creating the item when it does not exist;
 * - condition, update and write are one atomic step: each call is evaluated and applied in one
 *   synchronous turn, so calls in flight together are serialised as DynamoDB serialises writes to an item;
 * - request validation as DynamoDB does it: every ExpressionAttributeNames/Values entry must be used and
 *   every one used must be defined, the Key must be exactly the table's key, an update may not touch
 *   the key (ValidationException);
 * - ReturnValues NONE, UPDATED_NEW, ALL_NEW, UPDATED_OLD, ALL_OLD;
 * - `abortSignal` rejects a call still in flight.
 *
 * Anything outside that subset of the expression grammar throws, so a change to the expressions the
 * code sends fails its tests instead of being modelled wrongly. Outages, throttling and a hanging
 * DynamoDB can be injected.
 */
import {
  ConditionalCheckFailedException,
  UpdateItemCommand,
  type AttributeValue,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';

type Item = Record<string, AttributeValue>;

export class ValidationException extends Error {
  override readonly name = 'ValidationException';
}

class Refs {
  readonly usedNames = new Set<string>();
  readonly usedValues = new Set<string>();
  constructor(private readonly input: UpdateItemCommandInput) {}
  name(token: string): string {
    if (!token.startsWith('#')) {
      if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(token)) throw new Error(`model: unsupported attribute path ${token}`);
      return token;
    }
    const resolved = this.input.ExpressionAttributeNames?.[token];
    if (resolved === undefined)
      throw new ValidationException(
        `An expression attribute name used in the document path is not defined; attribute name: ${token}`,
      );
    this.usedNames.add(token);
    return resolved;
  }
  value(token: string): AttributeValue {
    const v = this.input.ExpressionAttributeValues?.[token];
    if (v === undefined)
      throw new ValidationException(
        `An expression attribute value used in expression is not defined; attribute value: ${token}`,
      );
    this.usedValues.add(token);
    return v;
  }
  /** `#n`, `name` or `:v`. */
  operand(token: string, item: Item): AttributeValue | undefined {
    return token.startsWith(':') ? this.value(token) : item[this.name(token)];
  }
}

function compare(a: AttributeValue | undefined, op: string, b: AttributeValue | undefined): boolean {
  if (!a || !b) return false;
  let x: number | string;
  let y: number | string;
  if (a.N !== undefined && b.N !== undefined) [x, y] = [Number(a.N), Number(b.N)];
  else if (a.S !== undefined && b.S !== undefined) [x, y] = [a.S, b.S];
  else return false;
  switch (op) {
    case '=':
      return x === y;
    case '<>':
      return x !== y;
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    case '>=':
      return x >= y;
  }
  throw new Error(`model: unsupported comparator ${op}`);
}

function evaluateCondition(expr: string, item: Item, refs: Refs): boolean {
  if (/[()]/.test(expr.replace(/\b(attribute_(?:not_)?exists)\(\s*[#\w]+\s*\)/g, ''))) {
    throw new Error(`model: unsupported condition (parentheses): ${expr}`);
  }
  // Every atom is evaluated (no short-circuit), so every name and value it uses counts as used.
  const disjuncts = expr.split(/\s+OR\s+/).map((conj) =>
    conj.split(/\s+AND\s+/).map((atom) => {
      const a = atom.trim();
      const fn = /^attribute_(not_)?exists\(\s*([#\w]+)\s*\)$/.exec(a);
      if (fn) {
        const present = item[refs.name(fn[2] as string)] !== undefined;
        return fn[1] ? !present : present;
      }
      const cmp = /^([#:\w]+)\s*(<>|<=|>=|=|<|>)\s*([#:\w]+)$/.exec(a);
      if (cmp)
        return compare(refs.operand(cmp[1] as string, item), cmp[2] as string, refs.operand(cmp[3] as string, item));
      throw new Error(`model: unsupported condition atom: ${a}`);
    }),
  );
  return disjuncts.some((conj) => conj.every(Boolean));
}

/** Applies the update to a copy of `item`; returns the copy and the attribute names it updated. */
function applyUpdate(expr: string, item: Item, refs: Refs): { next: Item; updated: Set<string> } {
  const next: Item = { ...item };
  const updated = new Set<string>();
  const clauses = expr.trim().split(/\s+(?=(?:SET|ADD|REMOVE|DELETE)\s)/);
  const seen = new Set<string>();
  for (const clause of clauses) {
    const m = /^(SET|ADD|REMOVE|DELETE)\s+([\s\S]+)$/.exec(clause.trim());
    if (!m) throw new Error(`model: unsupported update clause: ${clause}`);
    const [, verb, body] = m as unknown as [string, string, string];
    if (seen.has(verb))
      throw new ValidationException(`The "${verb}" section can only be used once in an update expression`);
    seen.add(verb);
    for (const action of body.split(/\s*,\s*(?![^(]*\))/)) {
      if (verb === 'SET') {
        const set = /^([#\w]+)\s*=\s*(.+)$/.exec(action.trim());
        if (!set) throw new Error(`model: unsupported SET action: ${action}`);
        const target = refs.name(set[1] as string);
        const rhs = (set[2] as string).trim();
        const ine = /^if_not_exists\(\s*([#\w]+)\s*,\s*(:\w+)\s*\)$/.exec(rhs);
        let value: AttributeValue | undefined;
        if (ine) {
          // Both operands are resolved (and so count as used) whether or not the attribute exists.
          const fallback = refs.value(ine[2] as string);
          value = item[refs.name(ine[1] as string)] ?? fallback;
        } else if (/^[#:\w]+$/.test(rhs)) value = refs.operand(rhs, item);
        else throw new Error(`model: unsupported SET operand: ${rhs}`);
        if (value === undefined)
          throw new ValidationException(
            'The provided expression refers to an attribute that does not exist in the item',
          );
        next[target] = value;
        updated.add(target);
      } else if (verb === 'ADD') {
        const add = /^([#\w]+)\s+(:\w+)$/.exec(action.trim());
        if (!add) throw new Error(`model: unsupported ADD action: ${action}`);
        const target = refs.name(add[1] as string);
        const delta = refs.value(add[2] as string);
        if (delta.N === undefined) throw new Error('model: ADD of a set is not modelled');
        const current = item[target];
        if (current !== undefined && current.N === undefined) {
          throw new ValidationException('An operand in the update expression has an incorrect data type');
        }
        next[target] = { N: String(Number(current?.N ?? '0') + Number(delta.N)) };
        updated.add(target);
      } else {
        throw new Error(`model: ${verb} is not modelled`);
      }
    }
  }
  return { next, updated };
}

const pick = (item: Item, names: Iterable<string>): Item =>
  Object.fromEntries([...names].filter((n) => item[n] !== undefined).map((n) => [n, item[n] as AttributeValue]));

export class DynamoDbTableModel {
  readonly items = new Map<string, Item>();
  /** Every UpdateItem input received, in order. */
  readonly calls: UpdateItemCommandInput[] = [];
  /** Errors the next calls fail with (a ProvisionedThroughputExceededException, an outage), in order. */
  readonly failures: Error[] = [];
  /** While set, calls never answer (until aborted). */
  hang = false;
  /** Calls aborted by their caller while hanging. */
  aborted = 0;

  constructor(
    readonly tableName: string,
    readonly partitionKey: string,
  ) {}

  /** The counter of `key`, or undefined. */
  attribute(key: string, name: string): AttributeValue | undefined {
    return this.items.get(key)?.[name];
  }

  async send(command: unknown, options: { abortSignal?: AbortSignal } = {}): Promise<unknown> {
    if (!(command instanceof UpdateItemCommand)) throw new Error('model: only UpdateItem is modelled');
    const input = command.input;
    this.calls.push(input);
    // Asynchronous like the network: concurrent calls interleave here, never inside the step below.
    await Promise.resolve();
    const failure = this.failures.shift();
    if (failure) throw failure;
    if (this.hang) {
      return new Promise((_, reject) => {
        const aborted = () => {
          this.aborted++;
          reject(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
        };
        if (options.abortSignal?.aborted) aborted();
        options.abortSignal?.addEventListener('abort', aborted);
      });
    }
    return this.update(input);
  }

  /** One atomic step: validate, evaluate the condition, write. */
  private update(input: UpdateItemCommandInput): unknown {
    if (input.TableName !== this.tableName) {
      throw Object.assign(new Error('Requested resource not found'), { name: 'ResourceNotFoundException' });
    }
    const keyNames = Object.keys(input.Key ?? {});
    const keyValue = input.Key?.[this.partitionKey]?.S;
    if (keyNames.length !== 1 || keyValue === undefined) {
      throw new ValidationException('The provided key element does not match the schema');
    }
    if (!input.UpdateExpression) throw new Error('model: an UpdateItem without UpdateExpression is not modelled');
    const refs = new Refs(input);
    const stored = this.items.get(keyValue) ?? {};
    const holds = input.ConditionExpression ? evaluateCondition(input.ConditionExpression, stored, refs) : true;
    const { next, updated } = applyUpdate(input.UpdateExpression, stored, refs);
    for (const n of Object.keys(input.ExpressionAttributeNames ?? {})) {
      if (!refs.usedNames.has(n))
        throw new ValidationException(`Value provided in ExpressionAttributeNames unused in expressions: keys: {${n}}`);
    }
    for (const v of Object.keys(input.ExpressionAttributeValues ?? {})) {
      if (!refs.usedValues.has(v))
        throw new ValidationException(
          `Value provided in ExpressionAttributeValues unused in expressions: keys: {${v}}`,
        );
    }
    if (updated.has(this.partitionKey)) {
      throw new ValidationException('Cannot update attribute pk. This attribute is part of the key');
    }
    if (!holds) {
      throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
    }
    const written: Item = { ...next, [this.partitionKey]: { S: keyValue } };
    this.items.set(keyValue, written);
    const returns = input.ReturnValues ?? 'NONE';
    const attributes =
      returns === 'ALL_NEW'
        ? written
        : returns === 'UPDATED_NEW'
          ? pick(written, updated)
          : returns === 'ALL_OLD'
            ? stored
            : returns === 'UPDATED_OLD'
              ? pick(stored, updated)
              : undefined;
    return { $metadata: {}, ...(attributes && Object.keys(attributes).length > 0 ? { Attributes: attributes } : {}) };
  }
}

/**
 * The stream consumer: the exceptions index follows the table's stream records without a model
 * call, rebuilding the very document triage indexed from the vector stored on the item.
 */
import { describe, expect, it, vi } from 'vitest';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { createHandler } from '../../functions/stream-index/handler.ts';
import type { ProjectionDeps } from '../../functions/stream-index/project.ts';
import { createMasker } from '../../functions/shared/masking.ts';
import { HashingEmbedder } from '../../functions/shared/search/hashing-embedder.ts';
import type { VectorDocument, VectorIndex } from '../../functions/shared/search/ports.ts';
import { decodeEmbedding, encodeEmbedding } from '../../functions/shared/search/stored-embedding.ts';
import type { ExceptionRecord } from '../../functions/shared/types.ts';
import { indexExceptions } from '../../functions/triage/triage.ts';
import { lambdaContext } from '../support/events.ts';

function fakeIndex() {
  const docs = new Map<string, VectorDocument>();
  return {
    docs,
    ensure: vi.fn(async () => undefined),
    replace: vi.fn(async (doc: VectorDocument) => void docs.set(doc.id, doc)),
    replaceMany: vi.fn(async (many: readonly VectorDocument[]) => many.forEach((d) => docs.set(d.id, d))),
    updateFields: vi.fn(async (id: string, fields: VectorDocument['fields']) => {
      const doc = docs.get(id);
      if (doc) docs.set(id, { ...doc, fields: { ...doc.fields, ...fields } });
    }),
    deleteWhere: vi.fn(async (_field: string, value: string) => Number(docs.delete(value))),
    search: vi.fn(async () => []),
    count: vi.fn(async () => docs.size),
  } satisfies VectorIndex & { docs: Map<string, VectorDocument> };
}

const embedder = new HashingEmbedder(64);
const masker = createMasker(['account'], 'a-secret-of-sixteen+');

function exception(id: string, overrides: Partial<ExceptionRecord> = {}): ExceptionRecord {
  return {
    exception_id: id,
    run_id: 'run-1',
    dataset: 'trades',
    business_date: '2025-12-10',
    exception_type: 'AMOUNT_MISMATCH',
    key: { trade_id: 'T1', account: 'ACCT1004' },
    source: { trade_id: 'T1', account: 'ACCT1004', amount: '10.00' },
    target: { trade_id: 'T1', account: 'ACCT1004', amount: '12.00' },
    diffs: [{ field: 'amount', source: '10.00', target: '12.00', delta: '2.00' }],
    status: 'OPEN',
    created_at: '2025-12-10T08:00:00.000Z',
    updated_at: '2025-12-10T08:00:00.000Z',
    version: 1,
    policy_severity: 'MEDIUM',
    history: [],
    ...overrides,
  } as ExceptionRecord;
}

let sequence = 100;
function streamRecord(eventName: 'INSERT' | 'MODIFY' | 'REMOVE', id: string, item?: object): DynamoDBRecord {
  return {
    eventID: `e${sequence}`,
    eventName,
    eventSource: 'aws:dynamodb',
    awsRegion: 'us-west-2',
    dynamodb: {
      Keys: marshall({ exception_id: id }) as never,
      ...(item
        ? { NewImage: marshall(item as Record<string, unknown>, { removeUndefinedValues: true }) as never }
        : {}),
      SequenceNumber: String(sequence++),
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
  };
}

function setup(overrides: Partial<ProjectionDeps> = {}) {
  const index = fakeIndex();
  const deps: ProjectionDeps = {
    index,
    policies: { forDataset: async () => ({ masker }) },
    embedderId: embedder.id,
    ...overrides,
  };
  const handler = createHandler(() => deps);
  return { index, run: (...records: DynamoDBRecord[]) => handler({ Records: records }, lambdaContext) };
}

describe('stream-index', () => {
  it('rebuilds from the item exactly the document triage indexed, with no embedder at all', async () => {
    // Prepare: triage indexes the masked exception and keeps its vector on the item.
    const triaged = {
      ...exception('exc_1'),
      triage: { summary: 'amount off by 2.00', severity: 'MEDIUM' },
    } as ExceptionRecord;
    const triageIndex = fakeIndex();
    const saved: { id: string; vector: readonly number[]; model: string }[] = [];
    await indexExceptions([masker.exception(triaged)], {
      embedder,
      exceptionsIndex: triageIndex,
      store: { saveEmbedding: async (id, vector, model) => void saved.push({ id, vector, model }) },
    });
    expect(saved).toHaveLength(1);
    const item = {
      ...triaged,
      embedding: encodeEmbedding(saved[0]!.vector),
      embedding_model: saved[0]!.model,
    };

    // Act: the other region sees the item through its stream.
    const { index, run } = setup();
    const response = await run(streamRecord('INSERT', 'exc_1', item));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    const rebuilt = index.docs.get('exc_1');
    const original = triageIndex.docs.get('exc_1');
    expect(rebuilt?.fields).toEqual(original?.fields);
    expect(rebuilt?.lexical).toBe(original?.lexical);
    expect(rebuilt?.lexical).not.toContain('ACCT1004');
    rebuilt?.vector.forEach((x, i) => expect(x).toBeCloseTo(original!.vector[i]!, 6));
  });

  it('a status change without a vector updates the fields of the indexed document only', async () => {
    const { index, run } = setup();
    const vector = await embedder.embed(['x']);
    const item = { ...exception('exc_2'), embedding: encodeEmbedding(vector[0]!), embedding_model: embedder.id };
    await run(streamRecord('INSERT', 'exc_2', item));

    await run(streamRecord('MODIFY', 'exc_2', { ...item, status: 'ACKNOWLEDGED', version: 2 }));
    await run(streamRecord('MODIFY', 'exc_3', exception('exc_3', { status: 'RESOLVED' })));

    expect(index.docs.get('exc_2')?.fields.status).toBe('ACKNOWLEDGED');
    // Never triaged, so never searchable: a status change does not add it.
    expect(index.docs.has('exc_3')).toBe(false);
  });

  it('a vector of another model is not mixed into the index', async () => {
    const { index, run } = setup();
    const item = { ...exception('exc_4'), embedding: encodeEmbedding([1, 0, 0]), embedding_model: 'other-model' };

    await run(streamRecord('INSERT', 'exc_4', item));

    expect(index.replace).not.toHaveBeenCalled();
    expect(index.updateFields).toHaveBeenCalledWith('exc_4', expect.objectContaining({ status: 'OPEN' }));
  });

  it('REMOVE deletes the document; only the latest record of an exception in a batch is applied', async () => {
    const { index, run } = setup();
    const item = { ...exception('exc_5'), embedding: encodeEmbedding([0.5, 0.5]), embedding_model: embedder.id };

    await run(streamRecord('INSERT', 'exc_5', item), streamRecord('REMOVE', 'exc_5'));

    expect(index.replace).not.toHaveBeenCalled();
    expect(index.deleteWhere).toHaveBeenCalledWith('exception_id', 'exc_5');
  });

  it('reports the records it could not index by sequence number, and indexes the rest', async () => {
    const { index, run } = setup({
      policies: {
        forDataset: async (dataset) => {
          if (dataset === 'broken') throw new Error('policy unreadable');
          return { masker };
        },
      },
    });
    const good = { ...exception('exc_6'), embedding: encodeEmbedding([1, 2]), embedding_model: embedder.id };
    const bad = streamRecord('INSERT', 'exc_7', { ...exception('exc_7'), dataset: 'broken' });

    const response = await run(streamRecord('INSERT', 'exc_6', good), bad);

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: bad.dynamodb?.SequenceNumber }]);
    expect(index.docs.has('exc_6')).toBe(true);
  });

  it('ignores items that are not exceptions', async () => {
    const { index, run } = setup();

    const response = await run(streamRecord('INSERT', 'x', { exception_id: 'x' }));

    expect(response.batchItemFailures).toEqual([]);
    expect(index.updateFields).not.toHaveBeenCalled();
  });
});

describe('stored embeddings', () => {
  it('round-trip as little-endian float32 base64', () => {
    const encoded = encodeEmbedding([1, -0.5, 0.25]);

    expect(Buffer.from(encoded, 'base64')).toEqual(Buffer.from([0, 0, 0x80, 0x3f, 0, 0, 0, 0xbf, 0, 0, 0x80, 0x3e]));
    expect(decodeEmbedding(encoded)).toEqual([1, -0.5, 0.25]);
    expect(() => decodeEmbedding('AAA=')).toThrow(/float32/);
  });

  it('keep a mostly-zero vector (hashing, hybrid) in the sparse form, exact to float32 and far shorter', async () => {
    // Prepare: a hybrid-like vector, a dense half and a hashing half with few non-zero dimensions.
    const [hashing] = await new HashingEmbedder(1024).embed(['amount mismatch on trade T0042 account ACCT1004']);
    const dense = Array.from({ length: 512 }, (_, i) => Math.sin(i + 1) / 20);
    const vector = [...dense, ...hashing!];

    // Act
    const encoded = encodeEmbedding(vector);

    // Assess
    expect(encoded.startsWith('sparse:')).toBe(true);
    expect(encoded.length).toBeLessThan(Buffer.from(new Float32Array(vector).buffer).toString('base64').length / 2);
    expect(decodeEmbedding(encoded)).toEqual(vector.map((x) => Math.fround(x)));
  });

  it('keep a vector with few zeros (Titan) in the dense form, which items stored before the sparse one carry', () => {
    const vector = Array.from({ length: 1024 }, (_, i) => (i % 50 === 0 ? 0 : Math.cos(i) / 32));

    const encoded = encodeEmbedding(vector);

    expect(encoded).toBe(Buffer.from(new Float32Array(vector).buffer).toString('base64'));
    expect(decodeEmbedding(encoded)).toEqual(vector.map((x) => Math.fround(x)));
  });

  it('read a sparse vector stored in the dense form, an all-zero vector, and refuse a damaged sparse one', () => {
    const sparse = Array.from({ length: 100 }, (_, i) => (i === 7 ? -0.75 : i === 99 ? 0.5 : 0));
    const legacy = Buffer.from(new Float32Array(sparse).buffer).toString('base64');
    const encoded = encodeEmbedding(sparse);

    expect(decodeEmbedding(legacy)).toEqual(sparse);
    expect(decodeEmbedding(encoded)).toEqual(sparse);
    expect(decodeEmbedding(encodeEmbedding(new Array<number>(64).fill(0)))).toEqual(new Array<number>(64).fill(0));
    // One value cut off, one value too many, no dimension count.
    const bytes = Buffer.from(encoded.slice('sparse:'.length), 'base64');
    expect(() => decodeEmbedding(`sparse:${bytes.subarray(0, bytes.length - 4).toString('base64')}`)).toThrow(/fewer/);
    expect(() => decodeEmbedding(`sparse:${Buffer.concat([bytes, Buffer.alloc(4)]).toString('base64')}`)).toThrow(
      /more/,
    );
    expect(() => decodeEmbedding('sparse:')).toThrow(/dimension count/);
  });
});

describe('stream-index environment', () => {
  it('names the embedder triage stores vectors of, with no model grant of its own', async () => {
    const { environmentFor, FUNCTION_ACCESS } = await import('../../infra/access.ts');
    const { localDeployment } = await import('../../scripts/local/stack.ts');
    const { resourceNames } = await import('../../functions/shared/resources.ts');
    const names = resourceNames();
    const deployment = {
      ...localDeployment({
        names,
        queues: names.queues,
        topics: { businessEvents: { arn: 'arn:aws:sns:us-east-1:000000000000:t' } },
        prefix: 'tally',
        dataDir: '/tmp/x',
        visibilityTimeoutSeconds: 10,
      }),
      models: { triage: 'm1', fallback: 'm2', embedding: 'amazon.titan-embed-text-v2:0' },
    };

    const env = environmentFor('stream-index', deployment);
    const triage = environmentFor('triage', deployment);

    expect(env.TALLY_EMBEDDER).toBe(triage.TALLY_EMBEDDER);
    expect(env.TALLY_EMBEDDING_MODEL_ID).toBe(triage.TALLY_EMBEDDING_MODEL_ID);
    expect(FUNCTION_ACCESS['stream-index'].models).toBeUndefined();
  });
});

/**
 * A fake OpenSearch Serverless collection on 127.0.0.1: enough of the REST API for the vector
 * index adapter, enforcing the AOSS limits (no custom _id, no upsert, no refresh) and recording
 * every request so tests can check exactly what was sent.
 */
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

interface Doc {
  _id: string;
  _source: Record<string, unknown>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  body: unknown;
}

export async function startFakeOpenSearch() {
  const indexes = new Map<string, { mappings: unknown; docs: Map<string, Doc> }>();
  const requests: RecordedRequest[] = [];
  let nextId = 1;

  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString();
    const url = new URL(req.url ?? '/', 'http://x');
    const bulk = url.pathname.endsWith('/_bulk');
    const body = bulk
      ? raw
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      : raw
        ? JSON.parse(raw)
        : undefined;
    requests.push({ method: req.method ?? '', path: url.pathname, query: url.search, body });
    const send = (status: number, payload: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(payload === undefined ? '' : JSON.stringify(payload));
    };
    if (url.searchParams.has('refresh'))
      return send(400, { error: { type: 'illegal_argument_exception', reason: 'refresh is not supported by AOSS' } });
    if (bulk) return send(200, runBulk(body as Record<string, unknown>[]));
    const [, index, action, id] = url.pathname.split('/');
    const idx = index ? indexes.get(index) : undefined;
    if (req.method === 'HEAD' && !action) return send(idx ? 200 : 404, undefined);
    if (req.method === 'PUT' && !action) {
      if (idx) return send(400, { error: { type: 'resource_already_exists_exception', reason: 'exists' } });
      indexes.set(index as string, { mappings: body, docs: new Map() });
      return send(200, { acknowledged: true });
    }
    if (!idx) return send(404, { error: { type: 'index_not_found_exception' } });
    if (action === '_doc' && id && req.method !== 'DELETE')
      return send(400, {
        error: {
          type: 'illegal_argument_exception',
          reason: 'document ID is not supported in create/index operation request',
        },
      });
    if (action === '_update' || action === '_update_by_query')
      return send(400, { error: { type: 'illegal_argument_exception', reason: 'upsert is not supported' } });
    if (action === '_doc' && req.method === 'POST') {
      const _id = `aoss-${nextId++}`;
      idx.docs.set(_id, { _id, _source: body });
      return send(201, { _id, result: 'created' });
    }
    if (action === '_doc' && req.method === 'DELETE') {
      return idx.docs.delete(id as string) ? send(200, { result: 'deleted' }) : send(404, { result: 'not_found' });
    }
    if (action === '_search') {
      const hits = search([...idx.docs.values()], body);
      return send(200, { hits: { total: { value: hits.length }, hits } });
    }
    if (action === '_count')
      return send(200, { count: [...idx.docs.values()].filter((d) => matches(d, body?.query)).length });
    return send(400, { error: { type: 'unsupported', reason: `${req.method} ${url.pathname}` } });
  });
  /** `_bulk` as AOSS runs it: index/create without `_id`, delete by `_id`, never update. */
  function runBulk(lines: Record<string, unknown>[]) {
    const items: Record<string, { status: number; _id?: string; error?: { type: string; reason: string } }>[] = [];
    for (let i = 0; i < lines.length; i++) {
      const [[action, meta]] = Object.entries(lines[i] as Record<string, unknown>) as [
        [string, { _index?: string; _id?: string }],
      ];
      const idx = meta._index ? indexes.get(meta._index) : undefined;
      const fail = (status: number, type: string, reason: string) =>
        items.push({ [action]: { status, error: { type, reason } } });
      if (action === 'update') {
        i++;
        fail(400, 'illegal_argument_exception', 'upsert is not supported');
      } else if (action === 'index' || action === 'create') {
        const source = lines[++i] as Record<string, unknown>;
        if (meta._id)
          fail(400, 'illegal_argument_exception', 'document ID is not supported in create/index operation request');
        else if (!idx) fail(404, 'index_not_found_exception', 'no such index');
        else {
          const _id = `aoss-${nextId++}`;
          idx.docs.set(_id, { _id, _source: source });
          items.push({ [action]: { status: 201, _id } });
        }
      } else if (action === 'delete') {
        if (idx?.docs.delete(meta._id as string)) items.push({ delete: { status: 200, _id: meta._id as string } });
        else fail(404, 'not_found', 'not found');
      } else fail(400, 'illegal_argument_exception', `unknown bulk action ${action}`);
    }
    return { errors: items.some((item) => Object.values(item)[0]?.error), items };
  }

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function get(source: Record<string, unknown>, path: string): unknown {
  return path.split('.').reduce<unknown>((v, p) => (v as Record<string, unknown> | undefined)?.[p], source);
}

function matches(doc: Doc, query: Record<string, unknown> | undefined): boolean {
  if (!query || 'match_all' in query) return true;
  if ('term' in query) {
    const [[field, value]] = Object.entries(query.term as Record<string, unknown>) as [[string, unknown]];
    // A keyword field holding a list matches a term equal to any of its values.
    const stored = get(doc._source, field);
    return Array.isArray(stored) ? stored.includes(value) : stored === value;
  }
  if ('range' in query) {
    const [[field, bounds]] = Object.entries(query.range as Record<string, { gte?: string; lte?: string }>) as [
      [string, { gte?: string; lte?: string }],
    ];
    const stored = get(doc._source, field);
    if (typeof stored !== 'string') return false;
    return (bounds.gte === undefined || stored >= bounds.gte) && (bounds.lte === undefined || stored <= bounds.lte);
  }
  if ('match' in query) return matchScore(doc, query) > 0;
  if ('terms' in query) {
    const [[field, values]] = Object.entries(query.terms as Record<string, unknown[]>) as [[string, unknown[]]];
    return values.includes(get(doc._source, field));
  }
  if ('bool' in query) {
    const bool = query.bool as { filter?: Record<string, unknown>[]; must?: Record<string, unknown>[] };
    return [...(bool.must ?? []), ...(bool.filter ?? [])].every((q) => matches(doc, q));
  }
  throw new Error(`fake OpenSearch: unsupported query ${JSON.stringify(query)}`);
}

/** The words of an analysed text field: lower case, split on anything not a letter or digit. */
function words(text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9]+/g) ?? [];
}

/** A `match` query's score: how many of the query's words the field holds (a stand-in for BM25). */
function matchScore(doc: Doc, query: Record<string, unknown>): number {
  const [[field, spec]] = Object.entries(query.match as Record<string, { query: string } | string>) as [
    [string, { query: string } | string],
  ];
  const text = String(get(doc._source, field) ?? '');
  const have = new Set(words(text));
  return words(typeof spec === 'string' ? spec : spec.query).filter((w) => have.has(w)).length;
}

function search(docs: Doc[], body: { size?: number; _source?: unknown; query: Record<string, unknown> }) {
  const size = body.size ?? 10;
  const project = (d: Doc) => {
    if (body._source === false) return {};
    if (body._source && typeof body._source === 'object') {
      const { vector: _vector, ...rest } = d._source;
      return rest;
    }
    return d._source;
  };
  if ('knn' in body.query) {
    const { vector, k, filter } = (
      body.query.knn as { vector: { vector: number[]; k: number; filter?: Record<string, unknown> } }
    ).vector;
    return (
      docs
        .filter((d) => matches(d, filter))
        .map((d) => ({ d, ip: vector.reduce((s, v, i) => s + v * ((d._source.vector as number[])[i] ?? 0), 0) }))
        .sort((a, b) => b.ip - a.ip)
        .slice(0, Math.min(k, size))
        // faiss inner-product scoring as OpenSearch reports it.
        .map(({ d, ip }) => ({ _id: d._id, _score: ip >= 0 ? 1 + ip : 1 / (1 - ip), _source: project(d) }))
    );
  }
  const must = (body.query.bool as { must?: Record<string, unknown>[] } | undefined)?.must ?? [];
  const scored = must.find((q) => 'match' in q);
  if (scored)
    return docs
      .filter((d) => matches(d, body.query))
      .map((d) => ({ d, score: matchScore(d, scored) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, size)
      .map(({ d, score }) => ({ _id: d._id, _score: score, _source: project(d) }));
  return docs
    .filter((d) => matches(d, body.query))
    .slice(0, size)
    .map((d) => ({ _id: d._id, _score: 1, _source: project(d) }));
}

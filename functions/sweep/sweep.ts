/**
 * Sweep core: finds uploads under `incoming/` that nothing has recorded and sends their "Object
 * Created" event again. A safety net for events lost between S3 and the ingest queue — a crash
 * of the local front door, a disabled or misconfigured EventBridge rule, a purged queue.
 *
 * An object counts as missed when it is older than `minAgeMs` (time for its own event to arrive
 * and be ingested), the files table has no record of its ETag for its (dataset, date, side), and
 * the side's record is not of a later upload. A side can arrive under several keys
 * (`source.csv`, then `source.jsonl` or `source.csv.gz`) and only the latest is current: the
 * earlier object stays in the bucket, and re-sending it would make ingest take it back (a revert)
 * and the two would take turns being current, a new run each minute. Re-sending is safe:
 * ingest is idempotent on bucket/key/ETag, so an event that was only slow is ingested once.
 */
import { PREFIXES } from '../shared/resources.ts';
import { parseIncomingKey } from '../shared/keys.ts';
import { objectCreatedEvent, type ObjectCreatedMessage } from '../shared/object-created.ts';
import type { MessageQueue } from '../shared/ports.ts';
import type { FileRecord, FileStore } from '../shared/tables/files.ts';

export interface StoredObject {
  readonly key: string;
  /** As S3 lists it (with or without quotes). */
  readonly etag: string;
  readonly size: number;
  readonly lastModified: Date;
}

export interface SweepDeps {
  /** Every object whose key starts with `prefix`. */
  readonly listObjects: (prefix: string) => AsyncIterable<StoredObject>;
  readonly files: Pick<FileStore, 'get'>;
  readonly ingestQueue: MessageQueue<ObjectCreatedMessage>;
  readonly bucket: string;
  readonly region: string;
  readonly account?: string;
  readonly now: () => number;
  readonly minAgeMs: number;
}

export interface SweepResult {
  readonly scanned: number;
  /** Objects whose event was sent again. */
  readonly resent: readonly { key: string; etag: string }[];
  /** Too recent to call missed: their own event may still be on its way. */
  readonly tooRecent: number;
  /** Not an extract key: ingest refuses those on their first event, so sending again would only fail again. */
  readonly notExtracts: number;
  /** Uploads of a side that a later upload of it (another key, or the other region's bucket) replaced. */
  readonly superseded: number;
}

const unquote = (etag: string) => etag.replaceAll('"', '');

/**
 * The least sequencer after `sequencer`, same width: the missed event's own sequencer was
 * greater than the recorded (older) upload's, and any later upload of the key will be greater
 * still, so this one sorts between them and can neither lose to the stale record nor beat a
 * newer upload.
 */
export function nextSequencerAfter(sequencer: string): string {
  const next = BigInt(`0x${sequencer}`) + 1n;
  return next.toString(16).toUpperCase().padStart(sequencer.length, '0');
}

/**
 * Whether the side's record, of another key or the other region's bucket, is of an upload made
 * after `object`. (The record of the same key in the bucket swept never is: S3 lists a key's latest version, so a record of another ETag of it
 * is of an earlier one (by time it could look later: the record's time is when its upload ended,
 * LastModified when the listed one began.) Another key, or the other region's bucket, by time:
 * S3 stamps event times to the second, so another key written in the same second as the recorded
 * one counts as replaced by it (whichever is current stays so), and an upload that began before
 * the recorded one but ended after it is taken for the earlier (a rare race the sweep cannot see).
 */
function supersededBy(record: FileRecord, object: StoredObject): boolean {
  if (record.uploaded_at === undefined) return false;
  return Date.parse(record.uploaded_at) >= object.lastModified.getTime();
}

/** Without a record to follow, the time the object was written, in the local front door's format. */
function sequencerFromTime(lastModified: Date): string {
  return lastModified.getTime().toString(16).toUpperCase().padStart(12, '0') + '0000';
}

export async function sweepIncoming(deps: SweepDeps): Promise<SweepResult> {
  const cutoff = deps.now() - deps.minAgeMs;
  let scanned = 0;
  let tooRecent = 0;
  let notExtracts = 0;
  let superseded = 0;
  const resent: { key: string; etag: string }[] = [];
  const batch: ObjectCreatedMessage[] = [];
  for await (const object of deps.listObjects(PREFIXES.incoming)) {
    scanned++;
    if (object.lastModified.getTime() > cutoff) {
      tooRecent++;
      continue;
    }
    const parsed = parseIncomingKey(object.key);
    if (!parsed.ok) {
      notExtracts++;
      continue;
    }
    const etag = unquote(object.etag);
    const { dataset, businessDate, side } = parsed.key;
    const record = await deps.files.get(dataset, businessDate, side);
    if (record !== undefined && unquote(record.etag) === etag) continue;
    // The recorded key itself, in this bucket: its record follows by sequencer (keys.ts isLaterUpload).
    const sameKey = record?.key === object.key && record.bucket === deps.bucket;
    if (record !== undefined && !sameKey && supersededBy(record, object)) {
      superseded++;
      continue;
    }
    batch.push(
      objectCreatedEvent({
        bucket: deps.bucket,
        key: object.key,
        etag,
        size: object.size,
        // Sequencers order only the events of one key.
        sequencer: sameKey ? nextSequencerAfter(record.sequencer) : sequencerFromTime(object.lastModified),
        region: deps.region,
        ...(deps.account ? { account: deps.account } : {}),
        reason: 'PutObject',
        time: object.lastModified,
      }),
    );
    resent.push({ key: object.key, etag });
  }
  if (batch.length > 0) await deps.ingestQueue.send(batch);
  return { scanned, resent, tooRecent, notExtracts, superseded };
}

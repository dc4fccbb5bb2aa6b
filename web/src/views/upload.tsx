/**
 * Upload the day's files: for each side the page asks the API for a pre-signed URL, PUTs the
 * file to it with a progress bar, then follows the reconciliation run to its summary.
 */
import { useState } from 'preact/hooks';
import {
  api,
  fileErrorText,
  putWithProgress,
  SIDES,
  type FileItem,
  type Page,
  type Run,
  type Side,
  type UploadTicket,
} from '../api.ts';
import { Badge, ErrorMessage, Field } from './common.tsx';
import { RunSummary } from './runs.tsx';

const TERMINAL = new Set(['COMPLETED', 'FAILED', 'SUPERSEDED']);
const FOLLOW_TIMEOUT_MS = 120_000;

function today(): string {
  return new Date().toISOString().slice(0, 10);
}

function DropZone({ side, file, onFile }: { side: Side; file: File | null; onFile: (f: File | null) => void }) {
  const [over, setOver] = useState(false);
  const id = `file-${side}`;
  return (
    <div
      class={`dropzone${over ? ' over' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        onFile(e.dataTransfer?.files[0] ?? null);
      }}
    >
      <label for={id}>
        <strong>{side === 'source' ? 'Source' : 'Target'} file</strong> (CSV): choose or drop it here
      </label>
      <input
        id={id}
        type="file"
        accept=".csv,.jsonl,.ndjson,.parquet,.gz,text/csv,text/plain,application/x-ndjson"
        onChange={(e) => onFile((e.currentTarget as HTMLInputElement).files?.[0] ?? null)}
      />
      <p class="small muted">{file ? `${file.name}, ${file.size.toLocaleString()} bytes` : 'no file chosen'}</p>
    </div>
  );
}

export function UploadView() {
  const [dataset, setDataset] = useState('trades');
  const [date, setDate] = useState(today());
  const [files, setFiles] = useState<Record<Side, File | null>>({ source: null, target: null });
  const [progress, setProgress] = useState<Record<Side, number | null>>({ source: null, target: null });
  const [phase, setPhase] = useState<'idle' | 'uploading' | 'following' | 'done'>('idle');
  const [run, setRun] = useState<Run | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [rejected, setRejected] = useState<FileItem[]>([]);
  const [error, setError] = useState<unknown>(null);

  const chosen = SIDES.filter((s) => files[s]);
  const latestRun = async () =>
    (await api<Page<Run>>('/runs', { query: { dataset, business_date: date, limit: '1' } })).items[0];
  const currentFiles = async () =>
    (await api<Page<FileItem>>('/files', { query: { dataset, business_date: date } })).items;

  const submit = async () => {
    setError(null);
    setRun(null);
    setNote(null);
    setRejected([]);
    setPhase('uploading');
    try {
      const before = await latestRun();
      const filesBefore = await currentFiles();
      const uploaded: Partial<Record<Side, string | null>> = {};
      for (const side of chosen) {
        const file = files[side] as File;
        setProgress((p) => ({ ...p, [side]: 0 }));
        const ticket = await api<UploadTicket>('/uploads', {
          method: 'POST',
          // The server picks the key and signs the format's content type.
          body: { dataset, business_date: date, side, ...formatOf(file.name), content_length: file.size },
        });
        uploaded[side] = await putWithProgress(ticket.url, file, ticket.headers, (f) =>
          setProgress((p) => ({ ...p, [side]: f })),
        );
      }
      setPhase('following');
      // The run to show reconciles exactly what was uploaded: uploading both sides may first start
      // a run of the new source against the old target, which the second upload supersedes.
      const isOurs = (run: Run) =>
        run.run_id !== before?.run_id && SIDES.every((side) => !uploaded[side] || run[side].etag === uploaded[side]);
      // A file of ours the ingest refused: it starts no run, so say why instead of waiting for one.
      const isOurFile = (f: FileItem) => {
        if (!chosen.includes(f.side)) return false;
        const etag = uploaded[f.side];
        if (etag) return f.etag === etag;
        const prior = filesBefore.find((b) => b.side === f.side);
        return !prior || prior.ingested_at !== f.ingested_at;
      };
      const deadline = Date.now() + FOLLOW_TIMEOUT_MS;
      for (;;) {
        const refused = (await currentFiles()).filter((f) => isOurFile(f) && f.status === 'REJECTED');
        if (refused.length > 0) {
          setRejected(refused);
          break;
        }
        const latest = await latestRun();
        if (latest && latest.run_id !== before?.run_id) {
          setRun(latest);
          if (isOurs(latest) && TERMINAL.has(latest.status)) break;
        }
        if (Date.now() > deadline) {
          setNote(
            latest && latest.run_id !== before?.run_id
              ? 'The run is still going; see Runs for its outcome.'
              : 'No new run yet. A run starts once both sides of the dataset and date are accepted; a file identical to the last one accepted starts none. See Runs.',
          );
          break;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
      setPhase('done');
    } catch (e) {
      setError(e);
      setPhase('idle');
    }
  };

  const busy = phase === 'uploading' || phase === 'following';
  return (
    <section aria-labelledby="upload-title">
      <h1 id="upload-title">Upload extracts</h1>
      <form
        class="upload"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <div class="row">
          {/* A hint only: the API enforces DATASET_PATTERN (functions/shared/keys.ts, which the
              browser cannot import: it hashes ids with node:crypto). The v-flag pattern needs "\-". */}
          <Field id="u-dataset" label="Dataset">
            <input
              id="u-dataset"
              required
              pattern="[A-Za-z0-9_\-]{1,64}"
              value={dataset}
              onInput={(e) => setDataset((e.currentTarget as HTMLInputElement).value)}
            />
          </Field>
          <Field id="u-date" label="Business date">
            <input
              id="u-date"
              type="date"
              required
              value={date}
              onInput={(e) => setDate((e.currentTarget as HTMLInputElement).value)}
            />
          </Field>
        </div>
        <div class="row">
          {SIDES.map((side) => (
            <DropZone
              key={side}
              side={side}
              file={files[side]}
              onFile={(f) => setFiles((x) => ({ ...x, [side]: f }))}
            />
          ))}
        </div>
        <p class="small muted">Upload one side to replace it (the other stays as last accepted), or both.</p>
        <button type="submit" disabled={busy || chosen.length === 0}>
          {chosen.length === 2 ? 'Upload both and reconcile' : 'Upload and reconcile'}
        </button>
      </form>
      {SIDES.filter((s) => progress[s] !== null).map((side) => (
        <div class="progress" key={side}>
          <label for={`p-${side}`}>{side} upload</label>
          <progress id={`p-${side}`} max={1} value={progress[side] ?? 0}>
            {Math.round(100 * (progress[side] ?? 0))}%
          </progress>
          <span class="small">{Math.round(100 * (progress[side] ?? 0))}%</span>
        </div>
      ))}
      <ErrorMessage error={error} />
      <div aria-live="polite">
        {phase === 'following' && (
          <p role="status">Files uploaded. Waiting for the reconciliation run…{run ? ` (${run.status})` : ''}</p>
        )}
        {run && (
          <section class="run-result" aria-labelledby="run-title" data-testid="upload-run">
            <h2 id="run-title">
              Run <code>{run.run_id}</code> <Badge kind="status" value={run.status} />
            </h2>
            <RunSummary run={run} />
            <p>
              <a href={`#/exceptions?run_id=${encodeURIComponent(run.run_id)}`}>Exceptions of this run</a> ·{' '}
              <a href={`#/exceptions?dataset=${encodeURIComponent(dataset)}&business_date=${date}`}>
                All exceptions for {dataset} / {date}
              </a>
            </p>
          </section>
        )}
        {rejected.length > 0 && (
          <div class="warning" role="alert" data-testid="upload-rejected">
            {rejected.map((f) => (
              <p key={f.side}>
                <strong>The {f.side} file was rejected</strong>: {fileErrorText(f.error)}
              </p>
            ))}
            <p class="small">
              Nothing was reconciled with it; the last accepted file stays current. Fix the file and upload it again.{' '}
              <a href={`#/files?dataset=${encodeURIComponent(dataset)}&business_date=${date}`}>
                Files for {dataset} / {date}
              </a>
            </p>
          </div>
        )}
        {note && (
          <p role="status" class="muted">
            {note}
          </p>
        )}
      </div>
    </section>
  );
}

/** The format POST /uploads takes, from the file's name (`.jsonl`, `.parquet`, else CSV; `.gz` noted). */
export function formatOf(name: string): { format: 'csv' | 'jsonl' | 'parquet'; gzip: boolean } {
  const lower = name.toLowerCase();
  const gzip = lower.endsWith('.gz');
  const base = gzip ? lower.slice(0, -3) : lower;
  const format = /\.(jsonl|ndjson)$/.test(base) ? 'jsonl' : base.endsWith('.parquet') ? 'parquet' : 'csv';
  return { format, gzip };
}

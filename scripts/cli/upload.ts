/**
 * `tally upload FILE`: asks the API for a pre-signed URL and streams the file to it, with a
 * progress bar on stderr for large files. The server picks the object key.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { parseArgs } from 'node:util';
import type { UploadTicket } from '../../functions/shared/api-types.ts';
import { DATASET_RULE, INCOMING_KEY_LAYOUT } from '../../functions/shared/keys.ts';
import { FORMATS } from '../../functions/shared/policy.ts';
import { SIDES } from '../../functions/shared/types.ts';
import { apiOptionsHelp, apiParseOptions, clientFor, processIo, reportApiError, type CliIo } from './api-client.ts';
import { UsageError } from './usage.ts';

export const uploadHelp = `Usage: tally upload FILE --dataset NAME --date YYYY-MM-DD --side source|target [options]

Uploads one extract through a pre-signed URL from the API, to
${INCOMING_KEY_LAYOUT}. Ingest starts on its own once the file
lands; when both sides of a dataset and date are in, they are reconciled.

Options:
  --dataset NAME          ${DATASET_RULE.padEnd(48)}[required]
  --date YYYY-MM-DD       business date                                   [required]
  --side source|target    which system the extract comes from            [required]
  --format FORMAT         csv, jsonl or parquet      [default: from FILE's extension, else csv]
  --content-type TYPE     the signed content type             [default: the format's]
  --no-progress           no progress bar (shown for files over 1 MiB on a terminal)
${apiOptionsHelp}

Example:
  npx tally upload scripts/local/sample/source.csv --dataset trades --date 2025-12-10 --side source
`;

/** Files this small upload in a blink: no bar. */
const PROGRESS_THRESHOLD_BYTES = 1024 * 1024;
const PROGRESS_INTERVAL_MS = 100;

export async function uploadCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...apiParseOptions,
      dataset: { type: 'string' },
      date: { type: 'string' },
      side: { type: 'string' },
      format: { type: 'string' },
      'content-type': { type: 'string' },
      'no-progress': { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(uploadHelp);
    return 0;
  }
  const [file, ...extra] = positionals;
  if (file === undefined || extra.length > 0) throw new UsageError('name exactly one FILE to upload', uploadHelp);
  const missing = (['dataset', 'date', 'side'] as const).filter((o) => values[o] === undefined).map((o) => `--${o}`);
  if (missing.length > 0)
    throw new UsageError(`${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} required`, uploadHelp);
  const side = values.side as string;
  if (!(SIDES as readonly string[]).includes(side))
    throw new UsageError(`--side must be source or target, got "${side}"`, uploadHelp);

  const extension = /\.(csv|jsonl|parquet)(\.gz)?$/i.exec(file);
  const format = values.format ?? extension?.[1]?.toLowerCase() ?? 'csv';
  if (!(FORMATS as readonly string[]).includes(format))
    throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got "${format}"`, uploadHelp);
  const gzip = extension?.[2] !== undefined;

  let size: number;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new Error('not a regular file');
    size = info.size;
  } catch (error) {
    io.stderr.write(`tally upload: cannot read ${file}: ${(error as Error).message}\n`);
    return 2;
  }
  if (size === 0) {
    io.stderr.write(`tally upload: ${file} is empty; an empty extract cannot be reconciled\n`);
    return 2;
  }

  const api = clientFor(values, io, uploadHelp);
  let ticket: UploadTicket;
  try {
    ticket = await api.request<UploadTicket>('POST', '/uploads', {
      body: {
        dataset: values.dataset,
        business_date: values.date,
        side,
        format,
        ...(gzip ? { gzip } : {}),
        ...(values['content-type'] === undefined ? {} : { content_type: values['content-type'] }),
        content_length: size,
      },
    });
  } catch (error) {
    return reportApiError('upload', io, error);
  }

  const showProgress = !values['no-progress'] && Boolean(io.stderr.isTTY) && size >= PROGRESS_THRESHOLD_BYTES;
  const progress = showProgress ? progressBar(io, basename(file), size) : undefined;
  let result: { status: number; body: string; etag: string | undefined };
  try {
    result = await putFile(ticket, file, (sent) => progress?.update(sent));
  } catch (error) {
    progress?.done();
    io.stderr.write(`tally upload: the upload to ${new URL(ticket.url).host} failed: ${(error as Error).message}\n`);
    return 1;
  }
  progress?.done();
  if (result.status < 200 || result.status >= 300) {
    const code = /<Code>([^<]*)<\/Code>/.exec(result.body)?.[1];
    const message = /<Message>([^<]*)<\/Message>/.exec(result.body)?.[1];
    io.stderr.write(
      `tally upload: storage refused the upload: HTTP ${result.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}\n`,
    );
    if (code === 'AccessDenied' || code === 'SignatureDoesNotMatch')
      io.stderr.write('  the pre-signed URL expired or the file changed while uploading; run the command again\n');
    return 1;
  }
  const etag = result.etag?.replaceAll('"', '');
  if (values.json) io.stdout.write(`${JSON.stringify({ key: ticket.key, bytes: size, etag: etag ?? null })}\n`);
  else io.stdout.write(`uploaded ${file} (${size} bytes) to ${ticket.key}${etag ? ` (ETag ${etag})` : ''}\n`);
  return 0;
}

/** Streams the file with exactly the headers the URL was signed for. */
export function putFile(
  ticket: UploadTicket,
  file: string,
  onProgress: (sent: number) => void,
): Promise<{ status: number; body: string; etag: string | undefined }> {
  return new Promise((resolve, reject) => {
    const url = new URL(ticket.url);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { method: ticket.method ?? 'PUT', headers: ticket.headers });
    req.setTimeout(120_000, () => req.destroy(new Error('no response for 120 s')));
    // Storage may answer (e.g. 403) before the body is sent: its answer is what counts.
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), etag: res.headers.etag }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    const stream = createReadStream(file);
    let sent = 0;
    stream.on('data', (chunk) => {
      sent += chunk.length;
      onProgress(sent);
    });
    stream.on('error', (error) => {
      req.destroy(error);
      reject(error);
    });
    stream.pipe(req);
  });
}

function progressBar(io: CliIo, name: string, total: number) {
  const width = Math.max(10, Math.min(40, (io.stderr.columns ?? 80) - name.length - 40));
  const started = Date.now();
  let last = 0;
  const render = (sent: number) => {
    const fraction = total === 0 ? 1 : sent / total;
    const filled = Math.round(fraction * width);
    const seconds = Math.max(0.001, (Date.now() - started) / 1000);
    const rate = sent / seconds / 1024 / 1024;
    io.stderr.write(
      `\r${name} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%  ${mib(sent)}/${mib(total)} MiB  ${rate.toFixed(1)} MiB/s `,
    );
  };
  return {
    update(sent: number) {
      const now = Date.now();
      if (now - last < PROGRESS_INTERVAL_MS && sent < total) return;
      last = now;
      render(sent);
    },
    done() {
      io.stderr.write('\n');
    },
  };
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

/**
 * Generates a source/target trade extract pair with about 1% of each exception kind, from a
 * seeded PRNG so every run of the benchmark reconciles the same files.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';

export interface GeneratedPair {
  readonly sourcePath: string;
  readonly targetPath: string;
  /** What the generator planted, per exception type. */
  readonly planted: Record<string, number>;
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function write(out: WriteStream, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

/**
 * `breakRate`: the share of trades planted as breaks (seven kinds, equally often; default 7%).
 * `dir` is made if missing.
 */
export async function generatePair(dir: string, trades: number, seed = 42, breakRate = 0.07): Promise<GeneratedPair> {
  mkdirSync(dir, { recursive: true });
  const random = mulberry32(seed);
  const sourcePath = `${dir}/source.csv`;
  const targetPath = `${dir}/target.csv`;
  const src = createWriteStream(sourcePath);
  const tgt = createWriteStream(targetPath);
  const planted: Record<string, number> = {
    MISSING_IN_TARGET: 0,
    MISSING_IN_SOURCE: 0,
    AMOUNT_MISMATCH: 0,
    FIELD_MISMATCH: 0,
    DUPLICATE_IN_SOURCE: 0,
    DUPLICATE_IN_TARGET: 0,
    INVALID_RECORD: 0,
  };
  const header = 'trade_id,account_id,trade_date,amount,currency\n';
  await write(src, header);
  await write(tgt, header);
  let sBuf = '';
  let tBuf = '';
  for (let i = 1; i <= trades; i++) {
    const id = `T${String(i).padStart(9, '0')}`;
    const account = `ACCT${1000 + Math.floor(random() * 9000)}`;
    const date = `2025-12-${String(1 + Math.floor(random() * 28)).padStart(2, '0')}`;
    const cents = Math.floor(random() * 10_000_000) - 2_000_000;
    const amount = `${cents < 0 ? '-' : ''}${Math.floor(Math.abs(cents) / 100)}.${String(Math.abs(cents) % 100).padStart(2, '0')}`;
    const line = `${id},${account},${date},${amount},USD\n`;
    // Scaled so that a roll under 0.07 (a planted break) happens `breakRate` of the time.
    const roll = (random() * 0.07) / breakRate;
    if (roll < 0.01) {
      planted.MISSING_IN_TARGET!++;
      sBuf += line;
    } else if (roll < 0.02) {
      planted.MISSING_IN_SOURCE!++;
      tBuf += line;
    } else if (roll < 0.03) {
      planted.AMOUNT_MISMATCH!++;
      sBuf += line;
      tBuf += `${id},${account},${date},${(cents + 100 + Math.floor(random() * 50_000)) / 100},USD\n`;
    } else if (roll < 0.04) {
      planted.FIELD_MISMATCH!++;
      sBuf += line;
      tBuf += `${id},ACCT0000,${date},${amount},USD\n`;
    } else if (roll < 0.05) {
      planted.DUPLICATE_IN_SOURCE!++;
      sBuf += line + line;
      tBuf += line;
    } else if (roll < 0.06) {
      planted.DUPLICATE_IN_TARGET!++;
      sBuf += line;
      tBuf += line + line;
    } else if (roll < 0.07) {
      planted.INVALID_RECORD!++;
      sBuf += `${id},${account},${date},n/a,USD\n`;
      // The target row of an invalid source row is on that row's INVALID_RECORD (one exception per key).
      tBuf += line;
    } else {
      sBuf += line;
      // Same amount written differently on the target side now and then: not a break.
      tBuf += roll > 0.99 ? `${id}, ${account} ,${date},"${amount}0",USD\n` : line;
    }
    if (sBuf.length > 1 << 16) {
      await write(src, sBuf);
      sBuf = '';
    }
    if (tBuf.length > 1 << 16) {
      await write(tgt, tBuf);
      tBuf = '';
    }
  }
  await write(src, sBuf);
  await write(tgt, tBuf);
  src.end();
  tgt.end();
  await Promise.all([once(src, 'close'), once(tgt, 'close')]);
  return { sourcePath, targetPath, planted };
}

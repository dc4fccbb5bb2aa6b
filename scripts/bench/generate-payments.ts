/**
 * Generates the payments-shape bench pair: the hub's `;`-separated CSV with decimal commas and
 * DD/MM/YYYY dates (source) against the correspondent's JSON Lines with ISO dates (target),
 * under policies/datasets/payments.md (mapped columns, a key typed in lower case now and then,
 * status equivalents, amounts off within the relative tolerance, value dates a day apart), with
 * about 1% of each exception kind. Seeded, so every run reconciles the same files.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { mulberry32 } from './generate.ts';

async function write(out: WriteStream, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

const CURRENCIES = ['EUR', 'USD', 'GBP', 'CHF'];
const SETTLED = ['SETTLED', 'STL', 'S'];

/** 1234567 cents as the hub writes it: 12.345,67 */
function hubAmount(cents: number): string {
  const negative = cents < 0;
  const abs = Math.abs(cents);
  const whole = Math.floor(abs / 100)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, '.');
  return `${negative ? '-' : ''}${whole},${String(abs % 100).padStart(2, '0')}`;
}

function plainAmount(cents: number): string {
  const abs = Math.abs(cents);
  return `${cents < 0 ? '-' : ''}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

export async function generatePayments(
  dir: string,
  payments: number,
  seed = 7,
): Promise<{ sourcePath: string; targetPath: string; planted: Record<string, number> }> {
  const random = mulberry32(seed);
  const sourcePath = `${dir}/payments-source.csv`;
  const targetPath = `${dir}/payments-target.jsonl`;
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
  await write(src, 'PaymentRef;ValueDate;Ccy;Amt;Status;Beneficiary\n');
  let sBuf = '';
  let tBuf = '';
  for (let i = 1; i <= payments; i++) {
    const id = `PAY${String(i).padStart(9, '0')}`;
    const day = 1 + Math.floor(random() * 27);
    const dd = String(day).padStart(2, '0');
    const ccy = CURRENCIES[Math.floor(random() * CURRENCIES.length)] as string;
    const cents = 100 + Math.floor(random() * 50_000_000);
    const status = SETTLED[Math.floor(random() * 3)] as string;
    const hubRef = random() < 0.05 ? id.toLowerCase() : id;
    const sLine = `${hubRef};${dd}/12/2025;${ccy};${hubAmount(cents)};SETTLED;Beneficiary ${i % 977}\n`;
    const tLine = (c = cents, d = dd, cur = ccy) =>
      `{"payment_id":"${id}","value_date":"2025-12-${d}","currency":"${cur}","amount":${plainAmount(c)},"status":"${status}"}\n`;
    const roll = random();
    if (roll < 0.01) {
      planted.MISSING_IN_TARGET!++;
      sBuf += sLine;
    } else if (roll < 0.02) {
      planted.MISSING_IN_SOURCE!++;
      tBuf += tLine();
    } else if (roll < 0.03) {
      planted.AMOUNT_MISMATCH!++;
      sBuf += sLine;
      // Beyond 0.01 + 0.05% of the larger amount.
      tBuf += tLine(cents + Math.ceil(cents * 0.001) + 100);
    } else if (roll < 0.04) {
      planted.FIELD_MISMATCH!++;
      sBuf += sLine;
      tBuf += tLine(cents, dd, ccy === 'EUR' ? 'USD' : 'EUR');
    } else if (roll < 0.05) {
      planted.DUPLICATE_IN_SOURCE!++;
      sBuf += sLine + sLine;
      tBuf += tLine();
    } else if (roll < 0.06) {
      planted.DUPLICATE_IN_TARGET!++;
      sBuf += sLine;
      tBuf += tLine() + tLine();
    } else if (roll < 0.07) {
      planted.INVALID_RECORD!++;
      sBuf += `${id};${dd}/12/2025;${ccy};n/a;SETTLED;x\n`;
      tBuf += tLine();
    } else if (roll < 0.08) {
      // Within tolerance: a small relative difference, or a value date a day later.
      sBuf += sLine;
      tBuf += roll < 0.075 ? tLine(cents + Math.floor(cents * 0.0004)) : tLine(cents, String(day + 1).padStart(2, '0'));
    } else {
      sBuf += sLine;
      tBuf += tLine();
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

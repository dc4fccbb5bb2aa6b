import { describe, expect, it } from 'vitest';
import { DEFAULT_PRICES, formatUsd, parsePriceTable, priceCall } from '../../functions/triage/cost.ts';

describe('model call pricing', () => {
  it('prices tokens in micro-dollars from the table, rounding up', () => {
    const prices = { m: { input_per_million_usd: 0.035, output_per_million_usd: 0.14 } };
    expect(priceCall('m', { input: 1000, output: 200 }, prices)).toEqual({ micro_usd: 63, priced: true });
    expect(priceCall('m', { input: 1, output: 0 }, prices)).toEqual({ micro_usd: 1, priced: true });
    expect(priceCall('m', {}, prices)).toEqual({ micro_usd: 0, priced: true });
  });

  it('prices an inference profile as its model and reports an unknown model as unpriced', () => {
    expect(priceCall('us.amazon.nova-micro-v1:0', { input: 1_000_000 }, DEFAULT_PRICES).micro_usd).toBe(35_000);
    expect(priceCall('somebody.unknown', { input: 5 }, DEFAULT_PRICES)).toEqual({ micro_usd: 0, priced: false });
  });

  it('reads configured prices over the defaults and names what is wrong', () => {
    const table = parsePriceTable('{"x":{"input_per_million_usd":1,"output_per_million_usd":2}}');
    expect(table.x).toEqual({ input_per_million_usd: 1, output_per_million_usd: 2 });
    expect(table['amazon.nova-micro-v1:0']).toBeDefined();
    expect(parsePriceTable(undefined)).toEqual(DEFAULT_PRICES);
    expect(() => parsePriceTable('{"x":{"input_per_million_usd":-1}}')).toThrow(/x\.input_per_million_usd/);
    expect(() => parsePriceTable('nope')).toThrow(/not JSON/);
  });

  it('formats micro-dollars as dollars', () => {
    expect(formatUsd(63)).toBe('$0.000063');
  });
});

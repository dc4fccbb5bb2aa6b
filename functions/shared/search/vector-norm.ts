/**
 * A vector's Euclidean length, the same double, bit for bit, as `Math.hypot(...vector)`: V8's
 * algorithm (builtins-math.cc: the values scaled by the largest, squared and added with Kahan's
 * compensation, the root scaled back) in a loop over the array. `Math.hypot(...v)` spreads a
 * 1,024-dimension vector into as many arguments: embedding a run's 5,322 texts (hashing and
 * combining) took 471-498 ms of CPU this way against 642-700 (scripts/bench/RESULTS.md, session
 * 31). Bit for bit, so the vectors the embedders make (and store on items) do not move.
 */
export function hypot(vector: ArrayLike<number>): number {
  const length = vector.length;
  let max = 0;
  let nan = false;
  for (let i = 0; i < length; i++) {
    const abs = Math.abs(vector[i] as number);
    if (Number.isNaN(abs)) nan = true;
    else if (max < abs) max = abs;
  }
  if (max === Number.POSITIVE_INFINITY) return max;
  if (nan) return Number.NaN;
  if (max === 0) return 0;
  let sum = 0;
  let compensation = 0;
  for (let i = 0; i < length; i++) {
    const abs = Math.abs(vector[i] as number);
    const n = abs / max;
    const summand = n * n - compensation;
    const preliminary = sum + summand;
    compensation = preliminary - sum - summand;
    sum = preliminary;
  }
  return Math.sqrt(sum) * max;
}

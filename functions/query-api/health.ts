/** GET /health for Route 53: each dependency probed cheaply, in parallel, with a deadline. */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { HealthCheck } from './ports.ts';

/** Route 53 waits 4 s (2 s with fast checks) for an answer; a slow dependency counts as down. */
export const HEALTH_CHECK_TIMEOUT_MS = 1500;

export interface HealthReport {
  readonly status: 'ok' | 'unavailable';
  readonly checks: Record<string, 'ok' | 'failed' | 'timeout'>;
}

export async function checkHealth(
  checks: readonly HealthCheck[],
  logger?: Logger,
  timeoutMs = HEALTH_CHECK_TIMEOUT_MS,
): Promise<HealthReport> {
  const results = await Promise.all(
    checks.map(async (c) => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      try {
        const outcome = await Promise.race([c.check().then(() => 'ok' as const), deadline]);
        if (outcome === 'timeout') logger?.warn('health check timed out', { check: c.name, timeoutMs });
        return [c.name, outcome] as const;
      } catch (error) {
        // Details stay in the log: the health endpoint is public.
        logger?.warn('health check failed', { check: c.name, error: error as Error });
        return [c.name, 'failed' as const] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const report = Object.fromEntries(results);
  return { status: results.every(([, r]) => r === 'ok') ? 'ok' : 'unavailable', checks: report };
}

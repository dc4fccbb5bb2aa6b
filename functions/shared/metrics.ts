/**
 * Business counts for CloudWatch: the port the composition roots use, and its Powertools Metrics
 * adapter, which writes embedded-metric-format documents to stdout (CloudWatch Logs turns them
 * into metrics; no PutMetricData call, no IAM). Names come from METRICS in resources.ts.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRICS, type MetricKey } from './resources.ts';

export interface BusinessMetrics {
  /** Adds `value` (default 1) to a metric; `dimensionValue` fills the metric's one dimension. */
  count(metric: MetricKey, value?: number, dimensionValue?: string): void;
  /** Publishes what was counted; called once at the end of each invocation. */
  flush(): void;
}

/** Powertools Metrics for one function (`service` dimension = the function's name). */
export function emfMetrics(service: string): BusinessMetrics {
  const metrics = new Metrics({ namespace: METRICS.namespace, serviceName: service });
  return {
    count(metric, value = 1, dimensionValue) {
      if (value === 0) return;
      const def: { name: string; dimension?: string } = METRICS[metric];
      if (def.dimension === undefined) {
        metrics.addMetric(def.name, MetricUnit.Count, value);
        return;
      }
      // One EMF document per dimension value: a document's dimensions apply to all its metrics.
      const single = metrics.singleMetric();
      single.addDimension(def.dimension, dimensionValue || 'unknown');
      single.addMetric(def.name, MetricUnit.Count, value);
    },
    flush() {
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    },
  };
}

/** Counts nothing (where no metrics are wanted, e.g. a consumer built without them). */
export const noMetrics: BusinessMetrics = { count: () => undefined, flush: () => undefined };

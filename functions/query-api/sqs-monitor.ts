/**
 * Queue health for GET /queues: depths from SQS GetQueueAttributes; the age of the oldest
 * message from CloudWatch (SQS has no API for it), where CloudWatch is configured.
 */
import { GetMetricDataCommand, type CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { QueueDepth, QueueMonitor, QueueReport } from './ports.ts';

export type MonitoredQueues = Readonly<Record<string, { readonly main: string; readonly dlq: string }>>;

/** The queue name is the last segment of its URL (https://sqs.{region}.amazonaws.com/{account}/{name}). */
export function queueNameOf(url: string): string {
  return url.slice(url.lastIndexOf('/') + 1);
}

/** CloudWatch publishes SQS metrics every minute; look back far enough to find the latest point. */
const AGE_LOOKBACK_MS = 10 * 60_000;

export class SqsQueueMonitor implements QueueMonitor {
  private readonly sqs: SQSClient;
  private readonly queues: MonitoredQueues;
  private readonly cloudwatch: CloudWatchClient | undefined;
  private readonly now: () => number;
  constructor(
    sqs: SQSClient,
    queues: MonitoredQueues,
    options: { cloudwatch?: CloudWatchClient; now?: () => number } = {},
  ) {
    this.sqs = sqs;
    this.queues = queues;
    this.cloudwatch = options.cloudwatch;
    this.now = options.now ?? Date.now;
  }

  async depths(): Promise<QueueReport[]> {
    const entries = Object.entries(this.queues);
    const urls = entries.flatMap(([, q]) => [q.main, q.dlq]);
    const [counts, ages] = await Promise.all([Promise.all(urls.map((url) => this.count(url))), this.ages(urls)]);
    return entries.map(([queue], i) => {
      const depth = (j: number): QueueDepth => ({
        ...(counts[j] as Omit<QueueDepth, 'oldest_age_seconds'>),
        oldest_age_seconds: ages[j] ?? null,
      });
      return { queue, main: depth(2 * i), dlq: depth(2 * i + 1) };
    });
  }

  private async count(url: string): Promise<Omit<QueueDepth, 'oldest_age_seconds'>> {
    const out = await this.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    const a = out.Attributes ?? {};
    return {
      visible: Number(a.ApproximateNumberOfMessages ?? 0),
      in_flight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
      delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
    };
  }

  /** One GetMetricData call for every queue: the latest ApproximateAgeOfOldestMessage (Maximum). */
  private async ages(urls: string[]): Promise<(number | null)[]> {
    if (!this.cloudwatch) return urls.map(() => null);
    const end = new Date(this.now());
    const out = await this.cloudwatch.send(
      new GetMetricDataCommand({
        StartTime: new Date(end.getTime() - AGE_LOOKBACK_MS),
        EndTime: end,
        ScanBy: 'TimestampDescending',
        MetricDataQueries: urls.map((url, i) => ({
          Id: `q${i}`,
          MetricStat: {
            Metric: {
              Namespace: 'AWS/SQS',
              MetricName: 'ApproximateAgeOfOldestMessage',
              Dimensions: [{ Name: 'QueueName', Value: queueNameOf(url) }],
            },
            Period: 60,
            Stat: 'Maximum',
          },
        })),
      }),
    );
    const byId = new Map((out.MetricDataResults ?? []).map((r) => [r.Id, r.Values?.[0]]));
    return urls.map((_, i) => {
      const value = byId.get(`q${i}`);
      return typeof value === 'number' ? value : null;
    });
  }
}

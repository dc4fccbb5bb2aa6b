/**
 * Webhook delivery of business events: each event on the business events topic (through the
 * notifications queue subscribed to it) is posted as Slack-compatible JSON (`{ text, blocks }`,
 * which Slack, Mattermost and Teams' Slack-compatible connectors accept) to every configured
 * webhook URL.
 *
 * Retries: each URL is tried `attempts` times with exponential backoff inside one delivery (a
 * webhook's blip); when a URL still fails, the message fails and SQS delivers it again after the
 * visibility timeout, up to the queue's maxReceiveCount, then it rests in the queue's DLQ (paged).
 * A redelivery posts to every URL again, so a URL that had accepted sees the event twice: chat
 * messages are cheap to repeat, lost ones are not. A 4xx other than 408/429 is the receiver
 * refusing the message (a revoked webhook): no point retrying it, the message goes to the DLQ.
 */
import { PermanentError, TransientError } from '../shared/errors.ts';
import type { BusinessEvent } from '../shared/notifications.ts';

export interface WebhookPost {
  (url: string, body: string): Promise<{ status: number }>;
}

export interface NotifyDeps {
  readonly webhookUrls: readonly string[];
  readonly post: WebhookPost;
  readonly sleep: (ms: number) => Promise<void>;
  /** Tries per URL within one delivery (default 3). */
  readonly attempts?: number;
  /** The first retry's wait; each next one doubles it (default 500 ms). */
  readonly baseDelayMs?: number;
}

export interface SlackMessage {
  readonly text: string;
  readonly blocks?: readonly Record<string, unknown>[];
}

/** The event as a chat message: its text, and a context line naming what it is about. */
export function slackMessage(event: BusinessEvent): SlackMessage {
  const about =
    event.kind === 'run_held'
      ? [`run ${event.run_id}`, event.dataset, event.business_date]
      : [
          event.dataset,
          event.business_date,
          `exception ${event.exception_id}`,
          event.due_at ? `due ${event.due_at}` : undefined,
        ];
  const context = about.filter((part): part is string => typeof part === 'string' && part !== '').join(' · ');
  const text = event.kind === 'run_held' ? `${event.text}. ${event.action}` : event.text;
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `${event.kind} · ${context}` }] },
    ],
  };
}

export interface DeliveryResult {
  readonly delivered: number;
  /** Posts made, retries included. */
  readonly posts: number;
}

export async function deliverEvent(event: BusinessEvent, deps: NotifyDeps): Promise<DeliveryResult> {
  const body = JSON.stringify(slackMessage(event));
  const attempts = deps.attempts ?? 3;
  const base = deps.baseDelayMs ?? 500;
  let posts = 0;
  const failures: string[] = [];
  for (const url of deps.webhookUrls) {
    let last = '';
    let ok = false;
    for (let attempt = 0; attempt < attempts && !ok; attempt++) {
      if (attempt > 0) await deps.sleep(base * 2 ** (attempt - 1));
      posts++;
      try {
        const { status } = await deps.post(url, body);
        if (status >= 200 && status < 300) ok = true;
        else if (status >= 400 && status < 500 && status !== 408 && status !== 429)
          throw new PermanentError('WEBHOOK_REFUSED', `${hostOf(url)} refused the message with ${status}`);
        else last = `HTTP ${status}`;
      } catch (error) {
        if (error instanceof PermanentError) throw error;
        last = (error as Error).message;
      }
    }
    if (!ok) failures.push(`${hostOf(url)}: ${last}`);
  }
  if (failures.length > 0)
    throw new TransientError(`webhook delivery failed after ${attempts} tries: ${failures.join('; ')}`);
  return { delivered: deps.webhookUrls.length, posts };
}

/** The host only: webhook URLs carry their secret in the path, which never reaches a log. */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(bad url)';
  }
}

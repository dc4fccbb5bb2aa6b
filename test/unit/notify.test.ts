import { describe, expect, it } from 'vitest';
import { PermanentError, TransientError } from '../../functions/shared/errors.ts';
import { assignedEvent, notifyAssigned, type BusinessEvent } from '../../functions/shared/notifications.ts';
import { deliverEvent } from '../../functions/notify/notify.ts';

const event = assignedEvent(
  { exception_id: 'a'.repeat(32), dataset: 'trades' },
  'ana',
  'bob',
  '2026-12-04T10:00:00.000Z',
);

function deps(statuses: number[]) {
  const posts: string[] = [];
  const waits: number[] = [];
  return {
    posts,
    waits,
    webhookUrls: ['https://hooks.example.com/services/T/B/secret'],
    post: async (url: string) => {
      posts.push(url);
      return { status: statuses.shift() ?? 200 };
    },
    sleep: async (ms: number) => void waits.push(ms),
  };
}

describe('webhook delivery', () => {
  it('backs off exponentially between tries of one URL', async () => {
    const d = deps([500, 429, 200]);
    expect(await deliverEvent(event, d)).toEqual({ delivered: 1, posts: 3 });
    expect(d.waits).toEqual([500, 1000]);
  });

  it('fails the message (for SQS to redeliver) when a URL never accepts, naming its host only', async () => {
    const d = deps([503, 503, 503]);
    const error = await deliverEvent(event, d).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toMatch(/hooks\.example\.com: HTTP 503/);
    expect((error as Error).message).not.toMatch(/secret/);
  });

  it('does not retry a webhook that refuses the message', async () => {
    const d = deps([404]);
    await expect(deliverEvent(event, d)).rejects.toBeInstanceOf(PermanentError);
    expect(d.posts).toHaveLength(1);
  });
});

describe('notifyAssigned', () => {
  it('announces an assignment and nothing for an unassignment', async () => {
    const sent: BusinessEvent[] = [];
    const notifier = { publish: async (e: BusinessEvent) => void sent.push(e) };
    await notifyAssigned(
      notifier,
      { exception_id: 'b'.repeat(32), dataset: 'trades' },
      'ana',
      'bob',
      Date.parse('2026-12-04T10:00:00Z'),
    );
    await notifyAssigned(notifier, { exception_id: 'b'.repeat(32), dataset: 'trades' }, null, 'bob');
    expect(sent).toEqual([
      expect.objectContaining({ kind: 'assigned', assignee: 'ana', by: 'bob', at: '2026-12-04T10:00:00.000Z' }),
    ]);
  });
});

/** Business notifications on an SNS topic (locally, the emulator's; a queue subscribed to it lets tests read them). */
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { subjectOf, type BusinessEvent, type BusinessNotifier } from '../notifications.ts';

export class SnsBusinessNotifier implements BusinessNotifier {
  private readonly sns: SNSClient;
  private readonly topicArn: string;
  constructor(sns: SNSClient, topicArn: string) {
    this.sns = sns;
    this.topicArn = topicArn;
  }

  async publish(event: BusinessEvent): Promise<void> {
    await this.sns.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        Subject: subjectOf(event),
        Message: JSON.stringify(event),
        // Subscribers filter on the event type without parsing the body (a held run keeps its old name).
        MessageAttributes: {
          event_type: { DataType: 'String', StringValue: event.kind === 'run_held' ? event.type : event.kind },
        },
      }),
    );
  }
}

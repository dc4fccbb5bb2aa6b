/**
 * A function run on a timer: an EventBridge schedule rule targeting it, and the permission that
 * lets EventBridge invoke it (nothing else may).
 */
import type { Construct } from 'constructs';
import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule/index.js';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target/index.js';
import { LambdaPermission } from '@cdktf/provider-aws/lib/lambda-permission/index.js';
import type { LambdaFunction } from '@cdktf/provider-aws/lib/lambda-function/index.js';

export function scheduleFunction(
  scope: Construct,
  id: string,
  props: { name: string; fn: LambdaFunction; everyMinutes: number },
): CloudwatchEventRule {
  const rule = new CloudwatchEventRule(scope, `${id}-rule`, {
    name: props.name,
    description: `Runs ${props.fn.functionName} every ${props.everyMinutes} minutes`,
    scheduleExpression: props.everyMinutes === 1 ? 'rate(1 minute)' : `rate(${props.everyMinutes} minutes)`,
  });
  new CloudwatchEventTarget(scope, `${id}-target`, { rule: rule.name, arn: props.fn.arn });
  new LambdaPermission(scope, `${id}-permission`, {
    statementId: 'AllowEventBridgeSchedule',
    action: 'lambda:InvokeFunction',
    functionName: props.fn.functionName,
    principal: 'events.amazonaws.com',
    sourceArn: rule.arn,
  });
  return rule;
}

/**
 * IAM statements as data. Every policy in the stacks is an aws_iam_policy_document built from
 * these, so the synthesised Terraform shows each statement's actions and resources in the open
 * (tests read them) instead of an opaque JSON string.
 */
import type { Construct } from 'constructs';
import { DataAwsIamPolicyDocument } from '@cdktf/provider-aws/lib/data-aws-iam-policy-document/index.js';
import type { Statement } from './statement.ts';

export { sid, type Condition, type Statement } from './statement.ts';

export function policyDocument(
  scope: Construct,
  id: string,
  statements: readonly Statement[],
): DataAwsIamPolicyDocument {
  return new DataAwsIamPolicyDocument(scope, id, {
    statement: statements.map((s) => ({
      sid: s.sid,
      effect: s.effect ?? 'Allow',
      actions: s.actions,
      // Trust policies name principals, not resources.
      ...(s.resources.length > 0 ? { resources: s.resources } : {}),
      ...(s.principals ? { principals: s.principals } : {}),
      ...(s.conditions ? { condition: s.conditions } : {}),
    })),
  });
}

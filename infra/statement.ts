/**
 * An IAM statement as plain data, and statement ids. No cdktf import: infra/access.ts builds
 * statements here, and the local stack and tests load it without the provider's types.
 */

export interface Condition {
  readonly test: string;
  readonly variable: string;
  readonly values: string[];
}

export interface Statement {
  readonly sid: string;
  readonly effect?: 'Allow' | 'Deny';
  readonly actions: string[];
  readonly resources: string[];
  readonly principals?: { type: string; identifiers: string[] }[];
  readonly conditions?: Condition[];
}

/** Statement ids must be alphanumeric. */
export function sid(...parts: string[]): string {
  return parts
    .map((p) =>
      p
        .replace(/[^A-Za-z0-9]/g, ' ')
        .split(' ')
        .filter(Boolean)
        .map((w) => w[0]!.toUpperCase() + w.slice(1))
        .join(''),
    )
    .join('');
}

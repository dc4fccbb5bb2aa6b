/**
 * The Tally CDKTF app: one regional stack per configured region, the S3 replication between
 * them, and one global stack. Stack ids are the names `cdktf deploy` takes, and each stack's
 * state key. Apply in this order: primary, secondary, replication, global (replication-stack.ts
 * says why).
 */
import type { App } from 'cdktf';
import type { Bundles } from './bundles.ts';
import { corsOriginsFor, type InfraConfig } from './config.ts';
import { GlobalStack } from './stacks/global-stack.ts';
import { RegionalStack } from './stacks/regional-stack.ts';
import { ReplicationStack } from './stacks/replication-stack.ts';

export interface TallyStacks {
  readonly primary: RegionalStack;
  readonly secondary: RegionalStack;
  /** S3 replication primary -> secondary (deployed after both regional stacks). */
  readonly replication: ReplicationStack;
  readonly global?: GlobalStack;
  /** What was left out and why, for synth to print. */
  readonly notes: readonly string[];
}

export function stackIds(config: InfraConfig) {
  return {
    primary: `${config.prefix}-primary`,
    secondary: `${config.prefix}-secondary`,
    replication: `${config.prefix}-replication`,
    global: `${config.prefix}-global`,
  };
}

export function buildTally(app: App, config: InfraConfig, bundles: Bundles): TallyStacks {
  const ids = stackIds(config);
  const notes: string[] = [];
  for (const name of bundles.skipped)
    notes.push(`functions/${name}/handler.ts does not exist yet: no ${name} Lambda (nor its event source or routes)`);
  const primary = new RegionalStack(app, ids.primary, { config, role: 'primary', bundles });
  const secondary = new RegionalStack(app, ids.secondary, { config, role: 'secondary', bundles });
  const replication = new ReplicationStack(app, ids.replication, { config });
  if (!config.domain)
    notes.push(
      'no domain configured: no custom domain, certificate or failover records (the health check is still created)',
    );
  if (!config.web.enabled) notes.push('web.enabled is false: no dashboard site (npm start serves it locally)');
  if (corsOriginsFor(config).length === 0)
    notes.push('no api.corsOrigins configured: browsers cannot upload to pre-signed URLs');
  if (!primary.api || !secondary.api) {
    notes.push('no query-api: no HTTP API, so no global failover stack');
    return { primary, secondary, replication, notes };
  }
  const global = new GlobalStack(app, ids.global, { config, primaryApi: primary.api, secondaryApi: secondary.api });
  return { primary, secondary, replication, global, notes };
}

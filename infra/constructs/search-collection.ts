/**
 * OpenSearch Serverless vector collection. Encryption with our key, network access public but
 * IAM-signed (the functions run outside a VPC; every request still needs SigV4 and a data access
 * grant), and data access granted per role and per index (infra/access.ts says which). Index
 * creation stays in the functions' code (#3).
 */
import { Construct } from 'constructs';
import { OpensearchserverlessAccessPolicy } from '@cdktf/provider-aws/lib/opensearchserverless-access-policy/index.js';
import { OpensearchserverlessCollection } from '@cdktf/provider-aws/lib/opensearchserverless-collection/index.js';
import { OpensearchserverlessSecurityPolicy } from '@cdktf/provider-aws/lib/opensearchserverless-security-policy/index.js';

export interface SearchCollectionProps {
  readonly collectionName: string;
  readonly kmsKeyArn: string;
}

export class SearchCollection extends Construct {
  readonly collection: OpensearchserverlessCollection;
  private readonly collectionName: string;

  constructor(scope: Construct, id: string, props: SearchCollectionProps) {
    super(scope, id);
    const name = props.collectionName;
    this.collectionName = name;
    const collectionResource = [`collection/${name}`];
    const encryption = new OpensearchserverlessSecurityPolicy(this, 'encryption', {
      name: `${name}-enc`,
      type: 'encryption',
      policy: JSON.stringify({
        Rules: [{ ResourceType: 'collection', Resource: collectionResource }],
        AWSOwnedKey: false,
        KmsARN: props.kmsKeyArn,
      }),
    });
    const network = new OpensearchserverlessSecurityPolicy(this, 'network', {
      name: `${name}-net`,
      type: 'network',
      policy: JSON.stringify([
        { Rules: [{ ResourceType: 'collection', Resource: collectionResource }], AllowFromPublic: true },
      ]),
    });
    this.collection = new OpensearchserverlessCollection(this, 'collection', {
      name,
      type: 'VECTORSEARCH',
      description: 'Policy passages and exceptions for retrieval and semantic search',
      // A collection cannot be created before a matching encryption policy exists.
      dependsOn: [encryption, network],
    });
  }

  /**
   * Data access for the functions' roles (created after them: the policy names their ARNs). One
   * rule per role, naming each index it uses with only the permissions it needs there.
   */
  grantDataAccess(
    grants: readonly {
      readonly principal: string;
      readonly description: string;
      readonly indexes: readonly { readonly resource: string; readonly permissions: readonly string[] }[];
    }[],
  ): void {
    const rules = grants
      .filter((g) => g.indexes.length > 0)
      .map((g) => ({
        Description: g.description,
        Rules: g.indexes.map((i) => ({
          ResourceType: 'index',
          Resource: [i.resource],
          Permission: [...i.permissions],
        })),
        Principal: [g.principal],
      }));
    if (rules.length > 0) {
      new OpensearchserverlessAccessPolicy(this, 'data-access', {
        name: `${this.collectionName}-access`,
        type: 'data',
        policy: JSON.stringify(rules),
      });
    }
  }
}

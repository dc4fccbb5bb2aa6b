/**
 * `npm start -- --auth`, end to end: the local OpenID provider signs seeded users in (driven
 * through its pages with fetch), the local API verifies their tokens as API Gateway's JWT
 * authorizer does, and the query API applies each user's roles and datasets. The CLI signs in with
 * `tally login` (code flow to a 127.0.0.1 listener) and the API commands use the kept token.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, generateKeyPair } from 'jose';
import { startLocalStack, type LocalStack } from '../../scripts/local/stack.ts';
import {
  DASHBOARD_CLIENT_ID,
  LOCAL_USERS,
  followSignIn,
  passwordSignIn,
  startLocalOidc,
  type LocalOidc,
} from '../../scripts/local/oidc.ts';
import { SAMPLE_DIR } from '../../functions/shared/paths.ts';
import { loginCommand } from '../../scripts/cli/login.ts';
import { whoamiCommand } from '../../scripts/cli/whoami.ts';
import type { CliIo } from '../../scripts/cli/api-client.ts';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

let dir: string;
let oidc: LocalOidc;
let stack: LocalStack;
const password = (email: string) => LOCAL_USERS.find((u) => u.email === email)?.password as string;
const tokenOf = async (email: string) =>
  (await passwordSignIn({ issuer: oidc.issuer, email, password: password(email) })).accessToken;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tally-auth-'));
  oidc = await startLocalOidc();
  stack = await startLocalStack({
    dataDir: join(dir, 'data'),
    visibilityTimeoutSeconds: 1,
    apiInstances: 1,
    auth: { issuer: oidc.issuer, audience: oidc.audience, dashboardClientId: DASHBOARD_CLIENT_ID },
  });
  await stack.loadPolicies();
  // Triage cites the corpus: index it before the extracts arrive, as npm start does.
  await stack.waitForIdle();
  for (const [dataset, source, target] of [
    ['trades', 'source.csv', 'target.csv'],
    ['payments', 'payments/source.csv', 'payments/target.jsonl'],
  ] as const) {
    await stack.upload(`incoming/${dataset}/2025-12-10/source.csv`, readFileSync(join(SAMPLE_DIR, source)));
    await stack.upload(
      `incoming/${dataset}/2025-12-10/target.${target.endsWith('.jsonl') ? 'jsonl' : 'csv'}`,
      readFileSync(join(SAMPLE_DIR, target)),
    );
  }
  await stack.waitForIdle();
}, 180_000);
afterAll(async () => {
  await stack?.stop();
  await oidc?.stop();
  rmSync(dir, { recursive: true, force: true });
});

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const body = async (res: Response): Promise<Json> => res.json();
const api = (path: string, token?: string, init: RequestInit = {}) =>
  fetch(`${stack.endpoints.api}${path}`, {
    ...init,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    },
  });

describe('local sign-in', () => {
  it('refuses requests without a valid token before the function runs, except the health probe', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT({ 'tally:roles': ['admin'], 'tally:datasets': '*' })
      .setProtectedHeader({ alg: 'RS256', kid: 'other' })
      .setIssuer(oidc.issuer)
      .setAudience(oidc.audience)
      .setSubject('mallory')
      .setExpirationTime('1h')
      .sign(privateKey);

    expect((await api('/health')).status).toBe(200);
    const none = await api('/exceptions');
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ message: 'Unauthorized' });
    expect((await api('/exceptions', 'not-a-jwt')).status).toBe(401);
    expect((await api('/exceptions', forged)).status).toBe(401);
  });

  it('serves the dashboard a site config pointing at the local issuer', async () => {
    const config = await body(await api('/config.json'));
    expect(config).toEqual({
      apiUrl: '',
      auth: { issuer: oidc.issuer, clientId: DASHBOARD_CLIENT_ID, scope: 'openid email' },
    });
  });

  it('a wrong password is refused at the provider', async () => {
    await expect(
      passwordSignIn({ issuer: oidc.issuer, email: 'analyst@tally.local', password: 'wrong' }),
    ).rejects.toThrow(/wrong e-mail or password/);
  });

  it('an analyst of payments sees and works only payments', async () => {
    const token = await tokenOf('analyst@tally.local');

    const me = await body(await api('/me', token));
    const list = await body(await api('/exceptions?limit=200', token));
    const trades = await api('/exceptions?dataset=trades', token);
    const search = await body(await api('/search?q=amount', token));

    expect(me).toEqual({ id: 'analyst@tally.local', roles: ['viewer', 'analyst'], datasets: ['payments'] });
    expect(list.items.length).toBeGreaterThan(0);
    expect(new Set(list.items.map((i: { dataset: string }) => i.dataset))).toEqual(new Set(['payments']));
    expect(trades.status).toBe(403);
    expect(search.items.every((i: { dataset: string }) => i.dataset === 'payments')).toBe(true);

    const one = list.items[0] as { exception_id: string; version: number };
    const changed = await api(`/exceptions/${one.exception_id}`, token, {
      method: 'PATCH',
      body: JSON.stringify({ version: one.version, note: 'checking with the bank' }),
    });
    expect(changed.status).toBe(200);
    expect((await body(changed)).history.at(-1)).toMatchObject({ by: 'analyst@tally.local' });
  });

  it('a viewer may read but not change, and an uploader may not upload outside its datasets', async () => {
    const viewer = await tokenOf('viewer@tally.local');
    const uploader = await tokenOf('uploader@tally.local');
    const trades = await body(await api('/exceptions?limit=1', viewer));
    const id = trades.items[0].exception_id as string;

    const change = await api(`/exceptions/${id}`, viewer, {
      method: 'PATCH',
      body: JSON.stringify({ version: trades.items[0].version, status: 'ACKNOWLEDGED' }),
    });
    const upload = (dataset: string) =>
      api('/uploads', uploader, {
        method: 'POST',
        body: JSON.stringify({ dataset, business_date: '2025-12-11', side: 'source', content_length: 5 }),
      });

    expect(change.status).toBe(403);
    expect((await body(change)).error.message).toContain('needs the analyst role');
    expect((await upload('trades')).status).toBe(403);
    expect((await upload('payments')).status).toBe(201);
  });

  it("MCP tools act as the caller: a viewer's update is refused, an analyst's outside its datasets is not found", async () => {
    const viewer = await tokenOf('viewer@tally.local');
    const mcp = async (token: string) => {
      const client = new Client({ name: 'tally-test', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${stack.endpoints.api}/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${token}` } },
        }),
      );
      return client;
    };
    const asViewer = await mcp(viewer);
    const listed = (await asViewer.callTool({ name: 'list_exceptions', arguments: { limit: 1 } })) as CallToolResult;
    const first = (listed.structuredContent as { items: { exception_id: string; version: number; dataset: string }[] })
      .items[0];

    const update = (await asViewer.callTool({
      name: 'update_exception',
      arguments: { exception_id: first?.exception_id, version: first?.version, status: 'ACKNOWLEDGED' },
    })) as CallToolResult;
    const asAnalyst = await mcp(await tokenOf('analyst@tally.local'));
    const elsewhere = (await asAnalyst.callTool({
      name: 'get_exception',
      arguments: { exception_id: first?.exception_id },
    })) as CallToolResult;

    expect(first?.dataset).toBe('trades');
    expect(update.isError).toBe(true);
    expect(JSON.stringify(update.content)).toContain('FORBIDDEN');
    expect(elsewhere.isError).toBe(true);
    expect(JSON.stringify(elsewhere.content)).toContain('NOT_FOUND');
    const after = await body(await api(`/exceptions/${first?.exception_id}`, viewer));
    expect(after.version).toBe(first?.version);
    await asViewer.close();
    await asAnalyst.close();
  });

  it('maker-checker: the approver who asked cannot approve; a second approver can', async () => {
    const maker = await tokenOf('approver@tally.local');
    const checker = await tokenOf('approver2@tally.local');
    const open = await body(await api('/exceptions?dataset=trades&status=OPEN&limit=1', maker));
    const one = open.items[0] as { exception_id: string; version: number };

    const asked = await api(`/exceptions/${one.exception_id}`, maker, {
      method: 'PATCH',
      body: JSON.stringify({ version: one.version, status: 'FALSE_POSITIVE', note: 'known booking delay' }),
    });
    const waiting = await body(asked);
    const decide = (token: string) =>
      api(`/exceptions/${one.exception_id}/approval`, token, {
        method: 'POST',
        body: JSON.stringify({ version: waiting.version, decision: 'approve' }),
      });
    const own = await decide(maker);
    const other = await decide(checker);

    expect(waiting).toMatchObject({ status: 'AWAITING_APPROVAL', approval: { requested_by: 'approver@tally.local' } });
    expect(own.status).toBe(403);
    expect((await body(own)).error.code).toBe('SAME_PERSON');
    expect(other.status).toBe(200);
    const done = await body(await api(`/exceptions/${one.exception_id}`, checker));
    expect(done.status).toBe('FALSE_POSITIVE');
    expect(done.history.at(-1)).toMatchObject({ action: 'APPROVED', by: 'approver2@tally.local' });
  });

  it('tally login signs in through the browser flow and the API commands use the kept token', async () => {
    const out: string[] = [];
    const io = (env: NodeJS.ProcessEnv): CliIo => ({
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => out.push(t) },
      env,
    });
    const env = { TALLY_TOKEN_FILE: join(dir, 'cli', 'token.json'), TALLY_API_URL: stack.endpoints.api };
    const login = loginCommand(['--issuer', oidc.issuer, '--no-browser'], io(env));
    let url: string | undefined;
    for (let i = 0; i < 100 && !url; i++) {
      url = /Sign in at:\n\s+(\S+)/.exec(out.join(''))?.[1];
      if (!url) await new Promise((r) => setTimeout(r, 20));
    }
    // What the browser does: the provider's pages, then the redirect to the CLI's listener.
    const back = await followSignIn(url as string, 'approver2@tally.local', password('approver2@tally.local'));
    expect(back.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(back)).status).toBe(200);

    expect(await login).toBe(0);
    expect(statSync(env.TALLY_TOKEN_FILE).mode & 0o777).toBe(0o600);
    out.length = 0;
    expect(await whoamiCommand(['--json'], io(env))).toBe(0);
    expect(JSON.parse(out.join(''))).toMatchObject({ id: 'approver2@tally.local', datasets: '*' });
  });
});

/**
 * An OpenAI-compatible chat endpoint on 127.0.0.1 for a local stack's triage
 * (`triageProviders: { chain: 'openai:recording-model,rules', openaiBaseUrl: url }`): it answers
 * every triage validly, citing the prompt's first passage when it holds one (or, with
 * `citesOnly`, the first of that policy document's), and counts the calls.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TRIAGE_TOOL_NAME } from '../../functions/triage/prompt.ts';

/** An OpenAI-compatible chat endpoint that answers every triage validly and counts the calls. */
export async function startRecordingModel(options: { citesOnly?: string } = {}): Promise<{
  url: string;
  calls: () => number;
  patternCalls: () => number;
  stop: () => Promise<void>;
}> {
  let calls = 0;
  let patternCalls = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      calls++;
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { messages: { role: string; content: string }[] };
      const user = body.messages.find((m) => m.role === 'user')?.content ?? '';
      const pattern = user.includes('<pattern>');
      if (pattern) patternCalls++;
      const answer = {
        severity: pattern ? 'HIGH' : 'MEDIUM',
        summary: pattern ? 'Systematic amount mismatch across the pattern.' : 'One break.',
        recommended_actions: ['Check the source system.'],
        root_cause_hypotheses: ['A shared cause.'],
        policy_citations: cited(user, options.citesOnly),
      };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          choices: [
            { message: { tool_calls: [{ function: { name: TRIAGE_TOOL_NAME, arguments: JSON.stringify(answer) } }] } },
          ],
          usage: { prompt_tokens: 500, completion_tokens: 60 },
        }),
      );
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls: () => calls,
    patternCalls: () => patternCalls,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The passage the answer cites: the prompt lists each as `[P<n>] <document> › <section>`. */
function cited(user: string, document: string | undefined): string[] {
  for (const [, ref, from] of user.matchAll(/^\[(P\d+)\] (.+?) › /gm))
    if (document === undefined || from === document) return [ref as string];
  return [];
}

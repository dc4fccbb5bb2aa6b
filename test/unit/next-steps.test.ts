/** What `npm start` prints once up: the CLI commands it shows reach the stack that printed them. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_API_URL } from '../../scripts/cli/api-client.ts';
import { nextSteps } from '../../scripts/local/next-steps.ts';

describe('npm start: where to look next', () => {
  it('on the default port shows the commands as they are', () => {
    const text = nextSteps(DEFAULT_API_URL, '.tally');
    expect(text).toContain(`the dashboard: ${DEFAULT_API_URL}/`);
    expect(text).not.toContain('TALLY_API_URL');
    expect(text).toContain('endpoints for other tools: .tally/endpoints.json');
  });

  it('on another port says how to point the CLI at it', () => {
    const text = nextSteps('http://127.0.0.1:3310', '/tmp/d');
    expect(text).toContain('the dashboard: http://127.0.0.1:3310/');
    expect(text).toContain('export TALLY_API_URL=http://127.0.0.1:3310 (or add --api http://127.0.0.1:3310)');
  });
});

/**
 * Tool failures as an assistant can act on them: a stable code, the API's message and what to do
 * next. Never a stack trace: anything that is not the API's own refusal is an internal error
 * whose message says only that.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { TallyApiError } from './api.ts';

export interface StructuredToolError {
  readonly code: string;
  readonly message: string;
  readonly what_to_do: string;
  /** On a CONFLICT: the version the exception is at now. */
  readonly current_version?: number;
  [key: string]: unknown;
}

function whatToDo(error: TallyApiError): string {
  if (error.status === 409)
    return 'Read the exception again (get_exception), check the change still makes sense, and retry with current_version.';
  if (error.status === 400 || error.status === 415)
    return 'Fix the arguments the message names and call the tool again.';
  if (error.status === 401)
    return 'The API did not accept the caller: sign in again with npx tally login, or set TALLY_API_TOKEN to a valid bearer token (stdio); sign in again (HTTP).';
  if (error.status === 403)
    return 'Your role does not allow this: ask an administrator for the role, or leave the change to someone who has it.';
  if (error.status === 404) return 'Check the id: list_exceptions, search_exceptions and list_runs give valid ones.';
  if (error.code === 'API_UNREACHABLE')
    return 'Start the API (npm start) or point TALLY_API_URL / --api at a running one, then retry.';
  return 'Retry shortly; if it persists, report it with the correlation id in the message.';
}

/** The structured form of an API refusal, or undefined for any other failure. */
export function structuredError(error: unknown): StructuredToolError | undefined {
  if (!(error instanceof TallyApiError)) return undefined;
  const conflict = error.status === 409;
  const current = error.details.current_version;
  return {
    code: conflict ? 'CONFLICT' : error.code,
    message: error.message,
    what_to_do: whatToDo(error),
    ...(conflict && typeof current === 'number' ? { current_version: current } : {}),
  };
}

/**
 * An error result. Its structure travels as JSON text: a tool's output schema describes its
 * success, and clients check structuredContent against it even on an error.
 */
export function errorResult(error: unknown): CallToolResult {
  const structured = structuredError(error) ?? {
    code: 'INTERNAL_ERROR',
    message: 'the tool failed unexpectedly',
    what_to_do: 'Retry shortly; if it persists, report it to the Tally operators.',
  };
  return { isError: true, content: [{ type: 'text', text: JSON.stringify(structured) }] };
}

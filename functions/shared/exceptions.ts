import { exceptionId } from './keys.ts';

// Built beside the other keys and ids; re-exported for the callers that import it from here.
// (A finding becomes an exception record in functions/recon/exception-record.ts.)
export { exceptionId };

/** What the exceptions table's `by_created_sharded` index shards: every exception carries it. */
export const EXCEPTION_RECORD_TYPE = 'EXCEPTION';

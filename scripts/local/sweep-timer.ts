/**
 * A scheduled function, locally: what an EventBridge schedule does on AWS (the sweep; the deadline
 * sweep, `name: 'deadlines'`, runs the same way).
 *
 * The sweep, locally: Runs the sweep handler when the
 * stack starts (catching uploads whose event a crash lost before the outbox existed, or that were
 * written straight to the emulator) and then every `intervalMs`, one run at a time. What it
 * re-sends, the handler logs as a warning (shown by `npm start`).
 */
import type { Context } from 'aws-lambda';
import type { SweepResult } from '../../functions/sweep/sweep.ts';

export interface LocalSweep {
  /** A run is in progress (for idle detection). */
  busy(): boolean;
  stop(): Promise<void>;
}

export interface LocalSweepOptions {
  /** The sweep function, hosted like every other function under its derived environment. */
  readonly invoke: (event: unknown, context: Context) => Promise<unknown>;
  readonly intervalMs: number;
  /** The scheduled function (default `sweep`): its context's name, and how its errors are labelled. */
  readonly name?: string;
  readonly onResent?: (result: SweepResult) => void;
  /** Any function's result (the sweep's is also given to onResent when it re-sent something). */
  readonly onResult?: (result: unknown) => void;
  readonly onError?: (error: Error) => void;
}

const CONTEXT = {
  functionName: 'sweep',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:sweep',
  awsRequestId: 'local-sweep',
} as Context;

export function startLocalSweep(options: LocalSweepOptions): LocalSweep {
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const run = () => {
    running = (async () => {
      try {
        const name = options.name ?? 'sweep';
        const result = (await options.invoke(
          { source: 'aws.events', 'detail-type': 'Scheduled Event' },
          {
            ...CONTEXT,
            functionName: name,
            invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${name}`,
            getRemainingTimeInMillis: () => 120_000,
          },
        )) as SweepResult;
        options.onResult?.(result);
        if (name === 'sweep' && result.resent.length > 0) options.onResent?.(result);
      } catch (error) {
        (options.onError ?? ((e: Error) => process.stderr.write(`  ! ${options.name ?? 'sweep'}: ${e.message}\n`)))(
          error as Error,
        );
      }
    })().finally(() => {
      running = undefined;
      if (!stopped) timer = setTimeout(run, options.intervalMs);
    });
  };
  run();
  return {
    busy: () => running !== undefined,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

/* global process */
// A stand-in for Lambda's Node.js runtime, run as a child process with the function's environment:
// loads index.mjs from LAMBDA_TASK_ROOT (the cold start), then invokes `handler` once per message
// from the parent and sends back its result or error. Plain JavaScript: it is copied next to the
// bundle, outside the repository, and must not depend on anything but Node.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const root = process.env.LAMBDA_TASK_ROOT;
let loaded;
const load = () => (loaded ??= import(pathToFileURL(join(root, 'index.mjs')).href));

const realNow = Date.now;

process.on('message', async ({ id, event, timeoutMs, clockOffsetMs = 0 }) => {
  // A test may run one invocation later than the wall clock (a scheduled function looking for
  // objects older than some minutes); SDK request signing follows, as it would on that day.
  Date.now = clockOffsetMs === 0 ? realNow : () => realNow() + clockOffsetMs;
  const started = Date.now();
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION}:123456789012:function:${process.env.AWS_LAMBDA_FUNCTION_NAME}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: `req-${id}`,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: 'parity',
    getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - started)),
    done() {},
    fail() {},
    succeed() {},
  };
  try {
    const { handler } = await load();
    const result = await handler(event, context);
    process.send({ id, result: result ?? null });
  } catch (error) {
    process.send({ id, error: { name: error?.name, message: error?.message ?? String(error), stack: error?.stack } });
  }
});
process.send({ ready: true });

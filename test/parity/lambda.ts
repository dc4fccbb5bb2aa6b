/**
 * Runs one built bundle the way Lambda does: in a process of its own, with exactly the
 * environment the synthesised aws_lambda_function carries plus what the Lambda runtime adds,
 * in a read-only task root (as /var/task), with credentials naming the function — so that the
 * recording proxy can tell whose call each request is.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DeployedFunction } from './terraform.ts';

/** An unprivileged account: as root, a read-only directory would not stop a write. */
const NOBODY = 65534;

export interface RunningLambda {
  readonly fn: DeployedFunction;
  readonly principal: string;
  /** `clockOffsetMs`: the invocation's clock runs that far ahead of the wall clock. */
  invoke<T = unknown>(event: unknown, options?: { clockOffsetMs?: number }): Promise<T>;
  /** What the function wrote to stdout/stderr (its structured logs). */
  output(): string;
  stop(): Promise<void>;
}

function readOnly(path: string): void {
  for (const entry of readdirSync(path)) {
    const child = join(path, entry);
    if (statSync(child).isDirectory()) readOnly(child);
    else chmodSync(child, 0o444);
  }
  chmodSync(path, 0o555);
}

export async function startLambda(options: {
  fn: DeployedFunction;
  bundleDir: string;
  runtime: string;
  workDir: string;
  endpoint: string;
  /** Bedrock Runtime's client speaks only HTTP/2. */
  http2Endpoint: string;
}): Promise<RunningLambda> {
  const { fn } = options;
  const taskRoot = join(options.workDir, `${fn.region}-${fn.name}`);
  cpSync(options.bundleDir, taskRoot, { recursive: true });
  cpSync(options.runtime, join(taskRoot, 'runtime.mjs'));
  readOnly(taskRoot);
  // The access key names the function: the proxy attributes each call by it.
  const principal = `${fn.region}/${fn.name}`.replace(/[^A-Za-z0-9]/g, '_');
  const env: Record<string, string> = {
    ...fn.environment,
    // What the Lambda runtime sets.
    AWS_LAMBDA_FUNCTION_NAME: fn.functionName,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_LOG_GROUP_NAME: fn.logGroup,
    AWS_LAMBDA_LOG_FORMAT: 'JSON',
    AWS_REGION: fn.region,
    AWS_DEFAULT_REGION: fn.region,
    LAMBDA_TASK_ROOT: taskRoot,
    TZ: ':UTC',
    PATH: '/usr/local/bin:/usr/bin:/bin',
    AWS_ACCESS_KEY_ID: principal,
    AWS_SECRET_ACCESS_KEY: 'parity',
    AWS_SESSION_TOKEN: 'parity',
    // The one difference from AWS: where the API calls go.
    AWS_ENDPOINT_URL: options.endpoint,
    AWS_ENDPOINT_URL_BEDROCK_RUNTIME: options.http2Endpoint,
  };
  const asRoot = process.getuid?.() === 0;
  const child: ChildProcess = fork(join(taskRoot, 'runtime.mjs'), [], {
    cwd: taskRoot,
    env,
    execArgv: [],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  child.on('exit', (code) => {
    for (const p of pending.values()) p.reject(new Error(`${principal} exited with ${code}:\n${output}`));
    pending.clear();
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`${principal} did not start (exit ${code}):\n${output}`)));
  });
  child.on('message', (m: { id: number; result?: unknown; error?: { name: string; message: string } }) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) p.reject(Object.assign(new Error(`${principal}: ${m.error.name}: ${m.error.message}`), m.error));
    else p.resolve(m.result);
  });
  return {
    fn,
    principal,
    invoke<T>(event: unknown, invokeOptions: { clockOffsetMs?: number } = {}) {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, event, timeoutMs: fn.timeoutSeconds * 1000, clockOffsetMs: invokeOptions.clockOffsetMs ?? 0 });
      });
    },
    output: () => output,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill();
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

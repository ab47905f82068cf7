/**
 * `npm run bench:parity`: how many of the fields of Elastic Defend's Linux exec event
 * (../shared/ecs/elastic-defend-linux-exec-fields.txt) the exec event of an interactive shell carries.
 *
 * Starts `execsentry events`, runs an interactive bash as user daemon in a real pseudo-terminal
 * (`script -qec 'runuser -u daemon -- /bin/bash -i'`, as a login would: runuser sets its groups), takes that
 * bash's exec event and prints the count, then the Defend fields it lacks. BENCH_PARITY_CLI runs another
 * build of the CLI (a before/after comparison).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { ProcessEvent } from '../src/ecs/types.js';

const CLI = resolve(process.env.BENCH_PARITY_CLI ?? 'dist/cli.js');
const DEFEND_FIELDS = resolve('../shared/ecs/elastic-defend-linux-exec-fields.txt');

const defendFields = readFileSync(DEFEND_FIELDS, 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));

/**
 * Every dotted path that holds a value in `document` (array elements under their array's path). An empty
 * array holds none: daemon's empty `process.thread.capabilities.*` count as missing.
 */
function fieldPaths(document: unknown, prefix = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(document)) for (const item of document) fieldPaths(item, prefix, out);
  else if (typeof document === 'object' && document !== null) {
    for (const [key, value] of Object.entries(document)) fieldPaths(value, prefix === '' ? key : `${prefix}.${key}`, out);
  } else if (document !== undefined && document !== null) out.add(prefix);
  return out;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((done) => (child.exitCode !== null || child.signalCode !== null ? done() : child.once('exit', () => done())));
}

async function until<T>(find: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`bench:parity: no ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const events: ProcessEvent[] = [];
const agent = spawn(process.execPath, [CLI, 'events'], { stdio: ['ignore', 'pipe', 'pipe'] });
let stderr = '';
agent.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
createInterface({ input: agent.stdout! }).on('line', (line) => events.push(JSON.parse(line) as ProcessEvent));
try {
  await until(() => (stderr.includes('streaming exec events') ? true : undefined), 'start of `execsentry events`');
  const shell = spawn('script', ['-qec', 'runuser -u daemon -- /bin/bash -i', '/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const event = await until(
    () => events.find((e) => e.process.executable === '/usr/bin/bash' && e.process.args?.[1] === '-i' && e.process.parent?.name === 'runuser' && e.process.user?.id === '1'),
    "the interactive shell's exec event",
  );
  // Names come from NSS after the event is built; the event is complete once it is printed.
  shell.stdin!.end('exit\n');
  await exited(shell);
  const present = fieldPaths(event);
  const missing = defendFields.filter((field) => !present.has(field));
  process.stdout.write(`Elastic Defend parity of an interactive shell's exec event: ${defendFields.length - missing.length} / ${defendFields.length} fields\n`);
  process.stdout.write(`missing (${missing.length}):\n${missing.map((field) => `  ${field}`).join('\n')}\n`);
} finally {
  agent.kill('SIGINT');
  await exited(agent);
}

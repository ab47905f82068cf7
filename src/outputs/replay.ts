import { constants as fsConstants } from 'node:fs';
import { lstat, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { OutputConfig } from '../config.js';
import { RuntimeFailure } from '../errors.js';
import { plantedFileProblem } from '../io/files.js';
import { lineText, readLines } from '../io/lines.js';
import { escapeControl } from '../log.js';
import { keepsDeadLetters, openOutput } from './index.js';
import { recordBytes } from './spool-record.js';
import { errorText, type DeadLetterTarget, type Output, type OutputContext } from './types.js';

/**
 * `execsentry outputs replay-dead-letter`: the alerts a collector refused for good go back through the
 * output that refused them, once the operator has fixed what made it refuse (a mapping, a credential).
 *
 * At least once, nothing lost: every dead-letter file is first renamed to `<name>.replaying-<time>` (so
 * what the output refuses again lands in a fresh dead-letter file, not in the one being read), its
 * alerts are appended to the output's disk spool (fsynced), and only then is the claimed file deleted.
 * A crash in between leaves the claim, which the next replay reads again; the alerts keep their
 * `event.id`, the delivery id Elasticsearch deduplicates on. Runs with the agent stopped (the caller holds
 * the state directory's lock), since the spools are the agent's.
 */

const DEAD_LETTER_NAME = /^(?<base>[a-z0-9-]+\.ndjson)(?:\.(?<rotation>\d+))?(?:\.replaying-(?<claimed>\d+))?$/;
/** A dead-letter line is one alert plus at most 16 KiB of response; no alert comes near this. */
const MAX_DEAD_LETTER_LINE_BYTES = 256 * 1024 * 1024;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface ReplayOptions {
  /** how long to wait for the collectors to take the replayed alerts; what is left stays in the spool */
  waitMs: number;
}

/** What happened to one output's dead letters. */
export interface ReplayReport {
  output: string;
  /** the dead-letter files read (by their claimed names) */
  files: string[];
  /** alerts put back into the output's spool */
  requeued: number;
  /** alerts acknowledged by the collector while the command waited */
  acknowledged: number;
  /** alerts refused again: they are in the output's dead-letter file again, with the new reason */
  refusedAgain: number;
  /** alerts still in the spool when the wait ended; the agent delivers them when it starts */
  pending: number;
  /** files with a line that is not a dead-letter record: kept (renamed) after their readable alerts were requeued */
  keptUnreadable: string[];
  deadLetterFile: string;
}

export interface ReplayResult {
  reports: ReplayReport[];
  /** dead-letter files of outputs that are not configured (left as they were) */
  unconfigured: Array<{ file: string; output: string | undefined }>;
}

interface Claim {
  /** the file's name while it is being replayed */
  path: string;
  base: string;
  /** its name before this replay claimed it (undefined: claimed by an earlier replay that did not finish) */
  original: string | undefined;
  order: [number, number];
}

export async function replayDeadLetters(configs: readonly OutputConfig[], context: OutputContext, options: ReplayOptions): Promise<ReplayResult> {
  const directory = join(context.stateDir, 'dead-letter');
  // Claimed before any output opens: an output's delivery loop may refuse a spooled alert at once, and it
  // must write that into a new file, not into one this replay is about to read and delete.
  const claims = await claimFiles(directory, context);
  const outputs: Output[] = [];
  const result: ReplayResult = { reports: [], unconfigured: [] };
  try {
    try {
      for (const config of configs) if (keepsDeadLetters(config)) outputs.push(await openOutput(config, context));
    } catch (err) {
      // nothing was read yet: the files get their names back, as if the replay had not started
      for (const claim of claims) await unclaim(claim);
      throw err;
    }
    const byBase = new Map<string, Output>();
    for (const output of outputs) if (output.deadLetters !== undefined) byBase.set(basename(output.deadLetters.path), output);
    for (const claim of claims) {
      if (byBase.has(claim.base)) continue;
      const output = await outputNamedIn(claim.path);
      result.unconfigured.push({ file: await unclaim(claim), output });
    }
    const replayed = new Set<string>();
    for (const output of outputs) {
      const target = output.deadLetters!;
      // the same output configured twice shares one dead-letter file: it is replayed once
      if (replayed.has(target.path)) continue;
      replayed.add(target.path);
      const mine = claims.filter((claim) => claim.base === basename(target.path)).sort((a, b) => a.order[0] - b.order[0] || a.order[1] - b.order[1]);
      if (mine.length === 0) continue;
      const before = output.stats();
      const report: ReplayReport = {
        output: output.name,
        files: mine.map((claim) => claim.path),
        requeued: 0,
        acknowledged: 0,
        refusedAgain: 0,
        pending: 0,
        keptUnreadable: [],
        deadLetterFile: target.path,
      };
      for (const claim of mine) {
        const { requeued, unreadable } = await requeueFile(claim, target, options.waitMs, context);
        report.requeued += requeued;
        if (unreadable > 0) {
          const kept = await unusedName(`${claim.path.replace(/\.replaying-\d+$/, '')}.unreadable`);
          await rename(claim.path, kept);
          report.keptUnreadable.push(kept);
          context.logger.error({ file: kept, unreadable }, `${unreadable} line(s) of ${claim.path} are not dead-letter records; the file is kept as ${kept}`);
        } else {
          await rm(claim.path);
        }
      }
      await output.flush(options.waitMs);
      const after = output.stats();
      report.acknowledged = after.acknowledged - before.acknowledged;
      report.refusedAgain = after.deadLettered - before.deadLettered;
      report.pending = after.pending;
      result.reports.push(report);
    }
  } finally {
    await Promise.allSettled(outputs.map((output) => output.close()));
  }
  return result;
}

/**
 * Renames every dead-letter file to its claimed name (leaving earlier claims as they are), oldest first.
 * Anything in the directory that is not a regular file is left alone with a warning: it was not written
 * by an output, and following a link planted there would read (and delete) someone else's file.
 */
async function claimFiles(directory: string, context: OutputContext): Promise<Claim[]> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const now = Date.now();
  const claims: Claim[] = [];
  for (const name of names.sort()) {
    const match = DEAD_LETTER_NAME.exec(name);
    if (match === null) continue;
    const path = join(directory, name);
    const planted = plantedFileProblem(await lstat(path));
    if (planted !== undefined) {
      context.logger.warn({ file: path, kind: planted }, `${path} is ${planted}, not a dead-letter file an output wrote; left alone`);
      continue;
    }
    const { base, rotation, claimed } = match.groups as { base: string; rotation?: string; claimed?: string };
    // older first: earlier claims, then the highest rotation number, then the current file
    const order: [number, number] = [claimed === undefined ? now : Number(claimed), rotation === undefined ? 0 : -Number(rotation)];
    if (claimed !== undefined) {
      claims.push({ path, base, original: undefined, order });
      continue;
    }
    const claimedPath = `${path}.replaying-${now}`;
    await rename(path, claimedPath);
    claims.push({ path: claimedPath, base, original: path, order });
  }
  return claims;
}

/** `<prefix>-<time>`, with a counter after it when that name is taken: renaming onto a file would replace it. */
async function unusedName(prefix: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const name = `${prefix}-${Date.now()}${attempt === 0 ? '' : `-${attempt}`}`;
    const taken = await lstat(name).then(
      () => true,
      () => false,
    );
    if (!taken) return name;
  }
}

/** Gives a claimed file of an output that is not configured its name back, unless something took it meanwhile. */
async function unclaim(claim: Claim): Promise<string> {
  if (claim.original === undefined) return claim.path;
  const taken = await lstat(claim.original).then(
    () => true,
    () => false,
  );
  if (taken) return claim.path;
  await rename(claim.path, claim.original);
  return claim.original;
}

/** The output named by a dead-letter file's first record, for the report on files no configured output owns. */
async function outputNamedIn(path: string): Promise<string | undefined> {
  const handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK).catch(() => undefined);
  if (handle === undefined) return undefined;
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const first = buffer.toString('utf8', 0, bytesRead).split('\n')[0]!;
    // the record's head is written first and small: `{"@timestamp":"…","output":"…",…`
    const quoted = /^\{"@timestamp":"[^"]*","output":("(?:[^"\\]|\\.)*")/.exec(first)?.[1];
    return quoted === undefined ? undefined : escapeControl(JSON.parse(quoted) as string);
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

/**
 * Puts every alert of one claimed file back into the spool, in order; counts the lines that hold none. The
 * spool is bounded and drops its oldest alerts when full, which here would lose alerts whose only other
 * copy is about to be deleted: so an alert is appended only when it fits, waiting (up to `waitMs`) for the
 * collector to make room.
 */
async function requeueFile(claim: Claim, target: DeadLetterTarget, waitMs: number, context: OutputContext): Promise<{ requeued: number; unreadable: number }> {
  const handle = await open(claim.path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  const planted = plantedFileProblem(await handle.stat());
  if (planted !== undefined) {
    await handle.close();
    throw new RuntimeFailure(`${claim.path} is ${planted}, not a dead-letter file an output wrote`);
  }
  let requeued = 0;
  let unreadable = 0;
  try {
    for await (const line of readLines(handle.createReadStream({ autoClose: false }), MAX_DEAD_LETTER_LINE_BYTES)) {
      const alert = line.tooLong === true ? undefined : alertOf(lineText(line.bytes));
      if (alert === null) continue;
      if (alert === undefined) {
        unreadable += 1;
        context.logger.warn({ file: claim.path, line: line.number }, `${claim.path}:${line.number}: not a dead-letter record (with an alert that has an event.id); kept`);
        continue;
      }
      // Stopping here leaves the claimed file in place, so nothing is lost: the next replay reads it again
      // (the alerts already requeued then go out twice, under the same event.id).
      const stop = (why: string): never => {
        throw new RuntimeFailure(`cannot put the alerts of ${claim.path} back into delivery: ${why}; ${requeued} were, the file stays: run the replay again`);
      };
      const bytes = recordBytes(alert.id, alert.json);
      for (const deadline = Date.now() + waitMs; target.freeBytes() < bytes; await sleep(100)) {
        if (Date.now() >= deadline) stop(`the output's spool is full (spoolMaxBytes) and the collector did not take alerts within ${Math.round(waitMs / 1000)} s`);
      }
      await target.requeue(alert.id, alert.json).catch((err: unknown) => stop(errorText(err)));
      requeued += 1;
    }
  } finally {
    await handle.close();
  }
  return { requeued, unreadable };
}

/** The alert of a dead-letter record and its delivery id; null for a blank line, undefined for anything else. */
function alertOf(text: string): { id: string; json: string } | null | undefined {
  if (text.trim() === '') return null;
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch {
    return undefined;
  }
  const alert = (record as { alert?: unknown } | null)?.alert;
  const id = (alert as { event?: { id?: unknown } } | null | undefined)?.event?.id;
  if (alert === null || typeof alert !== 'object' || Array.isArray(alert) || typeof id !== 'string' || id === '') return undefined;
  return { id, json: JSON.stringify(alert) };
}

import { ECS_VERSION, type EcsProcess, type ProcessEvent } from '../ecs/types.js';
import { entityId, eventFields, rawFields } from './enrich.js';
import { summaryOf } from './leaders.js';
import type { HostIdentity } from './host.js';
import type { ProcessEntry } from './table.js';

/**
 * Fork and end events, as Elastic Defend's Linux event model has them (ECS RFC 0030 "Linux event model",
 * its fork and exit examples; endpoint-package custom_documentation "Linux Process Fork, Exec, and Exit":
 * one field list for `event.action` fork, exec and end in logs-endpoint.events.process):
 *
 * - fork: `event.type` start (Elastic's Linux rules select forks with `event.type == "start" and
 *   event.action in ("exec", "fork")`). `process` is the child, which runs a copy of its parent's image
 *   until it execs: executable, args, working directory, ids come from the table entry copied at fork;
 *   `process.parent` is the forking process; `process.start` the child's start.
 * - end: `event.type` end (rules: `event.type == "end" and event.action == "end"`). `process` is the table
 *   entry of the process that exited, with `process.end` (the kernel's exit record time, also @timestamp)
 *   and `process.exit_code`.
 *
 * Only processes: the connector's thread creations and exits (pid ≠ tgid) never get here (native/connector.cc),
 * and kernel threads are skipped as Defend's probe skips them (elastic/ebpf GPL/Events/Process/Probe.bpf.c,
 * sched_process_fork and the exit hook both return early for PF_KTHREAD tasks).
 */

export interface LifecycleContext {
  identity: HostIdentity;
  /** ISO time of the kernel's record (@timestamp). */
  timestamp: string;
  created: string;
}

/**
 * process.exit_code from the kernel's exit status (a wait(2) status): the status byte, bits 8–15, as Elastic
 * Defend's eBPF probe computes it (elastic/ebpf GPL/Events/Process/Probe.bpf.c: `(task->exit_code >> 8) &
 * 0xFF`; quark's kprobe path does the same, kprobe_queue.c). A process killed by a signal therefore reports 0
 * there, not the shell's 128 + signal; execsentry adds the signal as execsentry.exit_signal.
 */
export function exitCodeOf(exitStatus: number): number {
  return (exitStatus >> 8) & 0xff;
}

/** The fork event of `child` (its entry as made from the fork record, parent linked when known). */
export function buildForkEvent(child: ProcessEntry, context: LifecycleContext): ProcessEvent {
  return lifecycleEvent('fork', child.pid, child, context);
}

/** The end event of `pid`, whose entry (still linked to its parent) is `entry` when the table knew it. */
export function buildEndEvent(pid: number, entry: ProcessEntry | undefined, exitStatus: number, context: LifecycleContext): ProcessEvent {
  const event = lifecycleEvent('end', pid, entry, context);
  event.process.end = context.timestamp;
  event.process.exit_code = exitCodeOf(exitStatus);
  const signal = exitStatus & 0x7f;
  if (signal !== 0) {
    event.execsentry ??= {};
    event.execsentry.exit_signal = signal;
    if ((exitStatus & 0x80) !== 0) event.execsentry.core_dumped = true;
  }
  return event;
}

function lifecycleEvent(action: 'fork' | 'end', pid: number, entry: ProcessEntry | undefined, context: LifecycleContext): ProcessEvent {
  const namespace = context.identity.entityNamespace;
  const known = entry === undefined ? { pid } : summaryOf(entry, namespace);
  // Without a start time the process cannot be identified across events; the id then names this event only.
  const process: EcsProcess = { ...known, pid, entity_id: known.entity_id ?? entityId(namespace, pid, -Date.parse(context.timestamp)) };
  const parent = entry?.parent;
  if (parent !== undefined) process.parent = summaryOf(parent, namespace);
  const event: ProcessEvent = {
    '@timestamp': context.timestamp,
    event: eventFields(action, context.created),
    ecs: { version: ECS_VERSION },
    process,
    host: context.identity.host,
    agent: context.identity.agent,
  };
  if (entry?.uid !== undefined) event.user = { id: String(entry.uid), effective: { id: String(entry.uid) } };
  if (entry?.gid !== undefined) event.group = { id: String(entry.gid) };
  // What the table could not know: the program of a process forked by one it never saw exec
  if (entry?.executable === undefined || entry.startTicks === undefined) event.execsentry = { partial: true };
  const raw = rawFields(entry?.raw, parent?.raw);
  if (raw !== undefined) (event.execsentry ??= {}).raw = raw;
  return event;
}

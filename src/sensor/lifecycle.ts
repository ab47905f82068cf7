import { markHoldsShared } from '../ecs/json.js';
import { ECS_VERSION, type EcsProcess, type ProcessEvent } from '../ecs/types.js';
import { entityId, eventFields, rawFields } from './enrich.js';
import { inheritAtFork, summaryOf } from './leaders.js';
import type { HostIdentity } from './host.js';
import { copyDefined, type ProcessEntry } from './table.js';

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
 * and kernel threads are skipped as Defend's probe skips them (elastic/ebpf GPL/Events/Process/Probe.bpf.c:
 * sched_process_fork returns early when the *child* is a kernel thread, the exit hook when the exiting task
 * is). A process forked by a kernel thread is not one: see forkedEntry.
 */

/** kthreadd, the kernel thread that creates every other (kernel/kthread.c). */
const KTHREADD_PID = 2;

/**
 * The table entry of a fork's child: a copy of its parent's image (it runs it until it execs), linked to the
 * parent when the table knows it.
 *
 * Whether the child is a kernel thread (PF_KTHREAD) is not inherited: copy_process() (kernel/fork.c) clears
 * PF_KTHREAD and sets it only for kernel_thread(), which kthreadd calls for every kernel thread it is asked
 * for (kernel/kthread.c kthreadd → create_kthread); the other kernel threads, kthreadd and the idle tasks,
 * exist before the connector can be listened to. A kernel thread's fork of anything else is a user-mode helper
 * (kernel/umh.c: a kworker runs user_mode_thread(), which does not ask for PF_KTHREAD): modprobe, a
 * core_pattern pipe handler, the hotplug helper, whose fork and end events Defend reports. So a child is a
 * kernel thread exactly when kthreadd forked it. (Before Linux 5.17 a helper kept the kworker's PF_KTHREAD
 * until its exec, so Defend's probe skipped its fork there.)
 */
export function forkedEntry(record: { pid: number; parentPid: number; startTicks: number }, parent: ProcessEntry | undefined, start: string): ProcessEntry {
  const child: ProcessEntry = { pid: record.pid, startTicks: record.startTicks, startEstimated: true, start, exited: false };
  if (parent !== undefined) {
    copyDefined(parent, child, IMAGE);
    inheritAtFork(parent, child);
    child.parent = parent;
  }
  if (record.parentPid === KTHREADD_PID) child.kernelThread = true;
  return child;
}

/** What a fork's child runs until it execs: its parent's image. */
const IMAGE = ['executable', 'name', 'commName', 'args', 'commandLine', 'workingDirectory', 'raw', 'interactive', 'uid', 'gid'] as const;

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
  const process: EcsProcess = markHoldsShared({ ...known, pid, entity_id: known.entity_id ?? entityId(namespace, pid, -Date.parse(context.timestamp)) });
  // The summary is shared and its text cached (src/ecs/json.ts): this event's own user and group
  // references are copies, since names are filled into an event's process in place.
  for (const key of ['user', 'real_user', 'group', 'real_group'] as const) {
    const ref = process[key];
    if (ref !== undefined) process[key] = { ...ref };
  }
  if (process.supplemental_groups !== undefined) process.supplemental_groups = process.supplemental_groups.map((group) => ({ ...group }));
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

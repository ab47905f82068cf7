import { z } from 'zod';

/**
 * process.env_vars as Elastic Defend captures them (its policy's `linux.advanced.capture_env_vars`:
 * https://www.elastic.co/guide/en/security/8.19/environment-variable-capture.html): up to five variables,
 * named in the configuration (case-sensitive), each binding as a `NAME=value` string; names of at most 63
 * and values of at most 1023 characters, longer ones left out. The values come from /proc/PID/environ, the
 * environment execve() was given, read by the reader thread in the exec's snapshot, and only when names
 * are configured. Defend drops an over-long value silently; here the event names the variable under
 * execsentry.env_vars_oversized, since padding LD_PRELOAD past the limit would otherwise hide it. Only the
 * first 40 KiB of environ are read (as Elastic's exec probe captures at most 40 KiB: ENV_MAX in elastic/ebpf
 * GPL/Events/Process/Probe.bpf.c), so that a padded environment cannot slow the reader thread; a longer one
 * sets execsentry.env_vars_truncated, since a configured variable placed beyond the cut would be missed.
 */
export const MAX_ENV_VARS = 5;
export const MAX_ENV_VAR_NAME_BYTES = 63;

const envVarName = z
  .string()
  .min(1)
  .refine((name) => Buffer.byteLength(name) <= MAX_ENV_VAR_NAME_BYTES, `an environment variable name is at most ${MAX_ENV_VAR_NAME_BYTES} bytes (as in Elastic Defend)`)
  .refine((name) => !/[=\u0000-\u001f\u007f]/.test(name), 'an environment variable name holds no "=" and no control character');

export const envVarNamesSchema = z
  .array(envVarName)
  .max(MAX_ENV_VARS)
  .refine((names) => new Set(names).size === names.length, 'names each variable once');

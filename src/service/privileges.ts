import { readFileSync } from 'node:fs';
import { RuntimeFailure } from '../errors.js';
import { capabilityNames, REQUIRED_CAPABILITIES } from '../sensor/capabilities.js';

export { REQUIRED_CAPABILITIES } from '../sensor/capabilities.js';

/** The effective capabilities of this process (CapEff in /proc/self/status), as CAP_* names. */
export function effectiveCapabilities(statusText: string = readFileSync('/proc/self/status', 'utf8')): readonly string[] {
  const line = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(statusText);
  return line === null ? [] : capabilityNames(line[1]!);
}

/**
 * Refuses to start, in one line, when a needed capability is missing: which, what it is for, and how to
 * grant it (root, or the unit's AmbientCapabilities=).
 */
export function requireCapabilities(effective: readonly string[] = effectiveCapabilities()): void {
  const missing = REQUIRED_CAPABILITIES.filter((capability) => !effective.includes(capability.name));
  if (missing.length === 0) return;
  throw new RuntimeFailure(
    `missing capabilities ${missing.map((capability) => capability.name).join(', ')} (${missing
      .map((capability) => `${capability.name}: ${capability.why}`)
      .join('; ')}); run as root, or as the execsentry service whose unit grants AmbientCapabilities=${REQUIRED_CAPABILITIES.map((capability) => capability.name).join(' ')}`,
  );
}

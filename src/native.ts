import { createRequire } from 'node:module';

/**
 * The typed face of the C++ addon (build/Release/execsentry.node). Every native function is declared here
 * and nowhere else; callers import from this module, never load the addon themselves.
 */
export interface NativeAddon {
  /** flock(fd, LOCK_EX|LOCK_NB): true when taken, false when another holder has it. */
  tryLockExclusive(fd: number): boolean;
  /** One sd_notify datagram to `socketPath` ('@…' = abstract namespace). Throws on failure. */
  sdNotify(socketPath: string, message: string): boolean;
}

const require = createRequire(import.meta.url);

let loaded: NativeAddon | undefined;

/** Loads the addon once; throws a clear error when it was not built (`npm ci` builds it). */
export function native(): NativeAddon {
  if (loaded === undefined) {
    try {
      loaded = require('../build/Release/execsentry.node') as NativeAddon;
    } catch (err) {
      throw new Error(
        `the native addon is not built (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); run \`npm ci\` or \`npx node-gyp rebuild\``,
      );
    }
  }
  return loaded;
}

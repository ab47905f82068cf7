import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { ProcessEvent } from '../../src/ecs/types.js';
import { createLogger } from '../../src/log.js';
import { Sensor } from '../../src/sensor/index.js';
import { describeAsRoot } from '../helpers/privilege.js';

/** Sensor.stop() on the live kernel: what was already built is delivered complete. */

const scratch = mkdtempSync(join(tmpdir(), 'execsentry-stop-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Whether this process has `path` open (the hash worker reads it). */
function openHere(path: string): boolean {
  return readdirSync('/proc/self/fd').some((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false;
    }
  });
}

describeAsRoot('stopping the sensor', () => {
  it('delivers an exec event whose hash is being computed with its hash, not as unreadable', async () => {
    // 60 MiB hashed three ways take a few hundred milliseconds of the worker
    const program = join(scratch, 'big-sleep');
    copyFileSync('/usr/bin/sleep', program);
    appendFileSync(program, Buffer.alloc(60 << 20, 9));
    chmodSync(program, 0o755);
    const events: ProcessEvent[] = [];
    const sensor = new Sensor({
      socketBufferBytes: 4 * 1024 * 1024,
      maxArgsBytes: 64 * 1024,
      maxProcessTableEntries: 65_536,
      logger: createLogger('silent'),
      hashes: ['md5', 'sha1', 'sha256'],
      maxHashFileBytes: 128 << 20,
      hashWaitMs: 10_000,
    });
    await sensor.start((batch) => events.push(...batch));
    const child = spawn(program, ['30'], { stdio: 'ignore' });
    try {
      const deadline = Date.now() + 10_000;
      while (!openHere(program) && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
      expect(openHere(program), 'the hash worker read the program').toBe(true);
      await sensor.stop();
      const exec = events.find((event) => event.event.action === 'exec' && event.process.pid === child.pid);
      expect(exec?.execsentry?.hash_missing).toBeUndefined();
      expect(exec?.process.hash?.sha256).toBe(createHash('sha256').update(readFileSync(program)).digest('hex'));
    } finally {
      child.kill('SIGKILL');
      await sensor.stop();
    }
  });
});

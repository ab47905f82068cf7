import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { expect, it } from 'vitest';
import type { ProcessEvent } from '../../src/ecs/types.js';
import { createLogger } from '../../src/log.js';
import { Sensor } from '../../src/sensor/index.js';
import { describeAsRoot } from '../helpers/privilege.js';

/**
 * Overrun recovery on the live kernel: a tiny socket buffer and a JS thread kept busy (spawnSync) while
 * an exec storm runs make the kernel drop records (ENOBUFS). The sensor must count the loss and rescan
 * /proc, so the long-lived process started in the middle of the storm is still reported.
 */
describeAsRoot('sensor overrun recovery', () => {
  it('counts the overrun and still reports the long-lived process started during it', async () => {
    const events: ProcessEvent[] = [];
    const sensor = new Sensor({ socketBufferBytes: 4096, maxArgsBytes: 4096, maxProcessTableEntries: 4096, logger: createLogger('silent') });
    await sensor.start((batch) => events.push(...batch));
    const scratch = mkdtempSync(join(tmpdir(), 'execsentry-overrun-'));
    const stormProgram = join(scratch, 'exec-storm');
    execFileSync('cc', ['-O2', '-o', stormProgram, fileURLToPath(new URL('../../bench/exec-storm.c', import.meta.url))]);
    // A gap shows only between two records the sensor received from the same CPU (README: lost is a lower
    // bound), so every CPU execs once before the storm and once after the loss; a quiet machine may
    // otherwise number nothing more on the CPU that lost records for a long time.
    const execOnEveryCpu = async (): Promise<void> => {
      const pids = new Set<number>();
      for (let cpu = 0; cpu < availableParallelism(); cpu++) {
        pids.add(spawnSync('taskset', ['-c', String(cpu), '/bin/true']).pid ?? 0);
      }
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline && ![...pids].every((pid) => events.some((e) => e.process.pid === pid))) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    await execOnEveryCpu();
    const marker = `30.${process.pid}${Math.floor(Math.random() * 1e6)}`;
    let sleepPid = 0;
    try {
      // The JS thread is blocked for the whole storm: batches pile up (the reader holds up to 64 of 256
      // records before it stops reading), then the socket overflows.
      const storm = `${stormProgram} 3000 2 overrun ${join(scratch, 'storm.log')} /bin/true >/dev/null`;
      const run = spawnSync('/bin/bash', ['-c', `${storm}; /bin/sleep ${marker} >/dev/null 2>&1 </dev/null & echo $!; ${storm}`], { encoding: 'utf8' });
      sleepPid = Number(run.stdout.trim());
      expect(sleepPid).toBeGreaterThan(0);
      const deadline = Date.now() + 15_000;
      let found: ProcessEvent | undefined;
      while (Date.now() < deadline) {
        found = events.find((e) => e.process.pid === sleepPid && e.process.args?.[1] === marker);
        const now = sensor.stats();
        if (found !== undefined && now.recoveryScans > 0 && now.lost > 0) break;
        // Records sent before the reader has drained the overflowed queue are dropped too, so the execs
        // that make the gap visible wait for the overrun to be read.
        if (now.overruns > 0 && now.lost === 0) await execOnEveryCpu();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const stats = sensor.stats();
      expect(stats.overruns).toBeGreaterThan(0);
      expect(stats.lost).toBeGreaterThan(0);
      expect(stats.recoveryScans).toBeGreaterThan(0);
      expect(found, 'the sleep started during the overrun').toBeDefined();
      expect(found?.process.executable).toBe('/usr/bin/sleep');
      // Either its exec record survived, or the rescan found it and says so.
      if (found?.execsentry?.recovered === true) expect(stats.recovered).toBeGreaterThan(0);
      for (const event of events.filter((e) => e.execsentry?.recovered === true)) {
        expect(event.process.entity_id).toMatch(/^[\w-]{32}$/);
        expect(event.process.start).toBeDefined();
      }
    } finally {
      if (sleepPid > 0) process.kill(sleepPid);
      await sensor.stop();
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 60_000);
});

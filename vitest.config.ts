import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Kernel-path tests watch every exec on the host; running files in parallel would let one file's
    // processes show up in another's expectations, and 2 cores do not gain much anyway.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ['default'],
  },
});

import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildProgram } from '../cli.js';
import { bashCompletion } from './completion.js';
import { manPage } from './man-page.js';
import { BASH_COMPLETION, MAN_PAGE } from './paths.js';

/** The generated files with their content now: what `npm run docs:man` writes and the test compares. */
export function generatedDocs(): Array<{ path: string; content: string }> {
  const program = buildProgram();
  return [
    { path: MAN_PAGE, content: manPage(program) },
    { path: BASH_COMPLETION, content: bashCompletion(program) },
  ];
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  for (const { path, content } of generatedDocs()) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
    process.stdout.write(`wrote ${path}\n`);
  }
}

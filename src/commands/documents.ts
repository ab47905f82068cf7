import type { Readable } from 'node:stream';
import { ValidationError } from '../errors.js';
import { openDocumentStream, UnreadableFile } from '../io/files.js';
import { escapeControl } from '../log.js';

/**
 * The NDJSON documents a command reads (`kql [FILE]`, `rules test --events FILE`): the file, or stdin for
 * "-". A file that cannot be opened is the user's input error (exit 2), named in one line.
 */
export async function openDocuments(path: string): Promise<Readable> {
  try {
    return await openDocumentStream(path);
  } catch (err) {
    if (err instanceof UnreadableFile) throw new ValidationError(`cannot read ${escapeControl(path)}: ${err.reason}`);
    throw err;
  }
}

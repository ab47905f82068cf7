/**
 * Data on stdout for the commands that print documents (`kql`, `eql`): writes honour backpressure, and a
 * reader that went away (`| head`) ends the output quietly instead of crashing on EPIPE.
 */

/** Whether stdout's reader went away: the rest of the output is dropped. */
export function stdoutClosed(): boolean {
  return closed;
}

let closed = false;
let stdoutWatched = false;

/** Writes to stdout honouring backpressure; a closed pipe ends the output quietly. */
export function writeStdout(data: Buffer | string): Promise<void> {
  if (!stdoutWatched) {
    stdoutWatched = true;
    // a permanent listener: Node reports EPIPE as an 'error' event after the write callback
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      closed = true;
    });
  }
  if (closed) return Promise.resolve();
  return new Promise((resolve) => {
    process.stdout.write(data, (err) => {
      if (err !== null && err !== undefined) closed = true;
      resolve();
    });
  });
}

import { constants as fsConstants } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeAllToFd } from './write-queue.js';
import { makeDirectories } from '../io/files.js';

export interface RotatingFileOptions {
  /** rotate before a write would take the file past this size */
  maxBytes: number;
  /** rotated files kept as path.1 (newest) … path.N */
  keep: number;
  /** mode of the parent directory when it has to be created */
  directoryMode: number;
}

/**
 * An append-only file readable only by its owner (0600, enforced on existing files too), rotated by
 * renaming: path → path.1 → … → path.N, the oldest removed. A tailer that follows by inode (Filebeat's
 * filestream, Elastic Agent) finishes the renamed file and picks up the new one.
 */
export class RotatingFile {
  private size = 0;

  private constructor(
    readonly path: string,
    private readonly options: RotatingFileOptions,
    private handle: FileHandle,
  ) {}

  static async open(path: string, options: RotatingFileOptions): Promise<RotatingFile> {
    makeDirectories(dirname(path), options.directoryMode);
    const file = new RotatingFile(path, options, await RotatingFile.openHandle(path));
    file.size = (await file.handle.stat()).size;
    return file;
  }

  private static async openHandle(path: string): Promise<FileHandle> {
    const handle = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND | fsConstants.O_NOFOLLOW, 0o600);
    await handle.chmod(0o600);
    return handle;
  }

  /** Appends whole lines; rotates first when they would not fit. Calls must not overlap (a WriteQueue sink). */
  async write(buffer: Buffer): Promise<void> {
    if (this.size > 0 && this.size + buffer.length > this.options.maxBytes) await this.rotate();
    await writeAllToFd(this.handle.fd, buffer);
    this.size += buffer.length;
  }

  private async rotate(): Promise<void> {
    await this.handle.close();
    const { keep } = this.options;
    if (keep === 0) {
      await rm(this.path, { force: true });
    } else {
      for (let index = keep - 1; index >= 1; index--) {
        await rename(`${this.path}.${index}`, `${this.path}.${index + 1}`).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
      }
      await rename(this.path, `${this.path}.1`);
    }
    this.handle = await RotatingFile.openHandle(this.path);
    this.size = 0;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

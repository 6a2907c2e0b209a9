import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * One process at a time writes the lake's datastores and runs its pipelines: the daemon while it is up,
 * otherwise a CLI command that needs to (reprocessing, pruning). The lock is a file holding the owner's
 * pid, created with O_EXCL; a lock whose pid is gone is stale and taken over.
 */
export class WriterLock {
  private held = false;
  constructor(readonly file: string) {}

  /** Takes the lock, or returns the pid of the live process holding it. */
  tryAcquire(): { acquired: true } | { acquired: false; pid: number } {
    if (this.held) return { acquired: true };
    mkdirSync(dirname(this.file), { recursive: true });
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(this.file, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        this.held = true;
        return { acquired: true };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const owner = this.owner();
      if (owner !== undefined && owner !== process.pid && isAlive(owner)) return { acquired: false, pid: owner };
      // Stale (its process died) or unreadable: remove it and try again.
      rmSync(this.file, { force: true });
    }
    const owner = this.owner();
    return { acquired: false, pid: owner ?? -1 };
  }

  release(): void {
    if (!this.held) return;
    if (this.owner() === process.pid) rmSync(this.file, { force: true });
    this.held = false;
  }

  /** The pid of a live holder, if any. */
  holder(): number | undefined {
    const owner = this.owner();
    return owner !== undefined && isAlive(owner) ? owner : undefined;
  }

  private owner(): number | undefined {
    try {
      const pid = Number(readFileSync(this.file, 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

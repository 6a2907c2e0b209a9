import { ProcessLock } from '../process-lock.js';

/**
 * One process at a time writes the lake's datastores and runs its pipelines: the daemon while it is up,
 * otherwise a CLI command that needs to (reprocessing, pruning). The lock is a kernel lock held for the
 * holder's life (see ProcessLock): a holder that died, even as an unreaped zombie, holds nothing.
 */
export class WriterLock {
  private lock?: ProcessLock;
  constructor(readonly file: string) {}

  /** Takes the lock, or returns the pid of the live process holding it. */
  tryAcquire(): { acquired: true } | { acquired: false; pid: number } {
    if (this.lock?.held) return { acquired: true };
    this.lock = ProcessLock.acquire(this.file);
    if (this.lock) return { acquired: true };
    return { acquired: false, pid: ProcessLock.holder(this.file) ?? -1 };
  }

  release(): void {
    this.lock?.release();
    this.lock = undefined;
  }

  /** The pid of a live holder, if any. */
  holder(): number | undefined {
    if (this.lock?.held) return process.pid;
    return ProcessLock.holder(this.file);
  }
}

/**
 * The control words shared by the main thread and the kernel workers (an Int32Array over a
 * SharedArrayBuffer).
 *
 * A call: the main thread writes BLOCK, opens STATE for the call's sequence number
 * (STATE = seq << 7, no worker joined), bumps SEQ and notifies. A worker that wakes joins by a
 * compare-and-swap on STATE while it is open for that seq (its tid = the number joined before it,
 * + 1), runs its share and bumps DONE. When the main thread has run out of work it closes STATE
 * (bit 6) and waits only for the workers that joined: a worker the OS has not scheduled yet is
 * never waited for, and skips the call when it wakes.
 */
export const CTL_SEQ = 0;
export const CTL_DONE = 1;
export const CTL_BLOCK = 2;
export const CTL_THREADS = 3;
export const CTL_STOP = 4;
export const CTL_STATE = 5;
/** CTL_READY + i: 1 once worker i has instantiated the kernels. */
export const CTL_READY = 40;
export const CTL_WORDS = 72;
export const MAX_WORKERS = 32;
export const STATE_CLOSED = 64;
export const STATE_JOINED_MASK = 63;
export const SEQ_MASK = 0xffffff;
/** Iterations a worker polls for the next call before it sleeps (a few tens of microseconds). */
export const SPIN = 20000;

export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctl: SharedArrayBuffer;
  index: number;
}

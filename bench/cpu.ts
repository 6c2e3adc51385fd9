/**
 * CPU time of the workerd process the bench runs, read from /proc (Linux): every thread's time
 * on a CPU (schedstat, nanoseconds), so a load phase's CPU per request is the difference before
 * and after it over the requests it completed. workerd serves a worker on one thread, so
 * throughput alone hides how much of a core each request costs once the core is not saturated.
 *
 * Every bench worker runs in that one process: a scenario's figure is the whole request path
 * (the gateway, the Durable Objects it calls and the service it forwards to), measured while
 * only that scenario has load.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** The workerd child process of this Node process (Miniflare spawns it), if there is one. */
export function workerdPid(): number | undefined {
  if (!existsSync('/proc/self/stat')) return undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ")".
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm === 'workerd' && ppid === process.pid) return Number(entry);
    } catch {
      // The process ended while we looked.
    }
  }
  return undefined;
}

/** Nanoseconds on a CPU so far, summed over the process's threads. */
export function cpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // A thread that ended while we looked: its time is lost to this sample only.
    }
  }
  return total;
}

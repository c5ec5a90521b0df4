/** Reading `/metrics` of a running server (development mode: open without a token). */
import { call, type RunningServer } from './server.js';

/** The sum of the samples of `name` whose labels include all of `labels` (0 when there are none). */
export async function metricSum(srv: RunningServer, name: string, labels: Record<string, string>): Promise<number> {
  const text = (await call(`${srv.url}/metrics`)).text;
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const inner = line.slice(name.length).match(/^\{(.*)\}/)?.[1] ?? '';
    if (want.every((w) => inner.split(',').includes(w))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

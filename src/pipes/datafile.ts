/**
 * A pipe as Tinybird's `.pipe` datafile text (what `GET /v0/pipes/<pipe>.pipe`
 * answers; Tinybird's clients pull pipes this way).
 */
import type { Pipe } from './pipe.js';

function indented(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(/\n+$/, '').split('\n').map((l) => `    ${l}`).join('\n');
}

export function pipeDatafile(pipe: Pipe): string {
  const out: string[] = [];
  if (pipe.description) out.push(`DESCRIPTION >\n${indented(pipe.description)}\n`);
  for (const n of pipe.nodes) {
    out.push(`NODE ${n.name}`);
    if (n.description) out.push(`DESCRIPTION >\n${indented(n.description)}\n`);
    out.push(`SQL >\n${indented(n.sql)}\n`);
    if (n.id === pipe.endpoint) out.push('TYPE ENDPOINT\n');  // as Tinybird's own datafiles write it
    out.push('');
  }
  // One newline at the end, as Tinybird's datafiles end.
  return out.join('\n').replace(/\n{3,}/g, '\n\n').replace(/\n+$/, '\n');
}

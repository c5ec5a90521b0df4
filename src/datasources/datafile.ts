/**
 * A data source as Tinybird's `.datasource` datafile text (what
 * `GET /v0/datasources/<name>.datasource` answers; Tinybird's clients pull data sources this way,
 * e.g. `@tinybirdco/sdk`'s `tinybird pull`, whose `tinybird migrate` then reads the file).
 */
import { formatSchema } from '../native/csv.js';
import type { DataSource } from './registry.js';

function indented(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(/\n+$/, '').split('\n').map((l) => `    ${l}`).join('\n');
}

/** `\`a\`, \`b\`` as Tinybird's datafiles write a key: plain names unquoted. */
function plainKey(key: string): string {
  return key.replace(/`([A-Za-z_][A-Za-z0-9_]*)`/g, '$1');
}

export function datasourceDatafile(ds: DataSource): string {
  const out: string[] = [];
  if (ds.description) out.push(`DESCRIPTION >\n${indented(ds.description)}\n`);
  out.push(`SCHEMA >\n${ds.columns.map((c) => `    ${formatSchema([c])}`).join(',\n')}\n`);
  out.push(`ENGINE "${ds.engine}"`);
  if (ds.sortingKey) out.push(`ENGINE_SORTING_KEY "${plainKey(ds.sortingKey).replace(/"/g, '\\"')}"`);
  return `${out.join('\n')}\n`;
}

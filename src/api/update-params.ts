/**
 * Parameters of `PUT /v0/pipes/<pipe>` and `PUT /v0/datasources/<name>` (Tinybird's rename and
 * describe): `name` (the new name) and `description`, from the query string, a form body or a
 * JSON object body (the body wins). Other parameters are ignored as elsewhere in the API
 * (clients add their own); they are named in the 400 answered when nothing is left to change.
 */
import type { Ctx } from '../http/context.js';
import { formOf, mergeForm, noLoneSurrogates, readBody, textOf } from '../http/context.js';
import { RoostError } from '../errors.js';

export interface UpdateParams { name?: string; description?: string; ignored: string[] }

/** A description longer than this is refused (it is shown in every list of the workspace). */
const MAX_DESCRIPTION = 10_000;

/** A description over the limit (`where`: whose) is a 400: the same limit on create and on update (create took 20,000). */
export function checkDescription(description: string | null | undefined, where = 'description'): void {
  if (typeof description === 'string' && description.length > MAX_DESCRIPTION) {
    throw new RoostError('INVALID_PARAMETER', `${where} is ${description.length} characters long; at most ${MAX_DESCRIPTION}`);
  }
}

/** Parameters clients send to every route; never reported as ignored. */
function clientParam(k: string): boolean {
  return k === 'token' || k === 'from' || k === 'cli_version' || k === 'workspace' || k.startsWith('__tb__');
}

export async function updateParams(ctx: Ctx): Promise<UpdateParams> {
  const raw = await readBody(ctx);
  // After the read: a multipart body is answered as the urlencoded form it holds (readBody).
  const type = String(ctx.req.headers['content-type'] ?? '').toLowerCase();
  let fields = new URLSearchParams();
  if (raw.length) {
    const text = textOf(raw);
    if (/^application\/(.+\+)?json/.test(type)) {
      let body: unknown;
      try { body = JSON.parse(text); } catch { throw new RoostError('INVALID_JSON', 'the body is not JSON; send {"name": "<new name>", "description": "<text>"}'); }
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw new RoostError('INVALID_JSON', 'send a JSON object: {"name": "<new name>", "description": "<text>"}');
      noLoneSurrogates(text, body);
      for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
        if (k === 'name' || k === 'description') {
          if (typeof v !== 'string') throw new RoostError('INVALID_PARAMETER', `${k} must be a string`);
          fields.set(k, v);
        } else if (v !== null && v !== undefined) {
          // Only its name is used (reported as ignored): a value nested thousands deep was
          // serialised here and overflowed the stack (500).
          fields.set(k, '');
        }
      }
    } else if (type.startsWith('application/x-www-form-urlencoded') || type === '') {
      fields = formOf(text);
    } else {
      throw new RoostError('UNSUPPORTED_MEDIA_TYPE', `send name and description in the query string, a form (application/x-www-form-urlencoded) or a JSON object, not ${type.split(';')[0]}`);
    }
  }
  const all = mergeForm(ctx.query, fields);
  const out: UpdateParams = { ignored: [] };
  for (const k of new Set(all.keys())) {
    const values = all.getAll(k);
    if (k === 'name' || k === 'description') {
      if (values.length > 1) throw new RoostError('INVALID_PARAMETER', `${k} is given ${values.length} times; give it once`);
      out[k] = values[0]!;
    } else if (!clientParam(k)) {
      out.ignored.push(k);
    }
  }
  checkDescription(out.description);
  return out;
}

/** The 400 for a request that gives nothing to change (naming the parameters it did give). */
export function nothingToChange(what: string, p: UpdateParams): RoostError {
  const unused = p.ignored.length ? `; not parameters of this route: ${p.ignored.join(', ')}` : '';
  return new RoostError('INVALID_PARAMETER', `nothing to change: give name (the ${what}'s new name) and/or description${unused}`, { details: { accepted: ['name', 'description'], ignored: p.ignored } });
}

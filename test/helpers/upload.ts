/**
 * Uploads written piece by piece over real HTTP, to act between the pieces: the request is taken
 * (100 Continue) and its first piece written before `startUpload` resolves.
 */
import http from 'node:http';

export type Answer = { status: number; body: any; text: string };

/**
 * A POST whose body is written piece by piece. Resolves once the server has taken the request
 * (100 Continue) and the first piece is written; `finish` writes the rest and answers the reply.
 */
export async function startUpload(baseUrl: string, path: string, token: string, type: string, first: string): Promise<{ finish(rest: string): Promise<Answer> }> {
  const u = new URL(`${baseUrl}${path}`);
  const req = http.request({
    hostname: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': type, 'Transfer-Encoding': 'chunked', Expect: '100-continue' },
  });
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let body: unknown = text;
        try { body = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode!, body, text });
      });
    });
    req.on('error', reject);
  });
  const early = answer.then((a) => { throw new Error(`answered before the body was sent: ${a.status} ${a.text}`); });
  await Promise.race([new Promise<void>((r) => req.once('continue', () => r())), early]);
  await new Promise<void>((resolve, reject) => req.write(first, (e) => (e ? reject(e) : resolve())));
  return {
    async finish(rest: string) {
      await new Promise<void>((resolve) => req.end(rest, () => resolve()));
      return answer;
    },
  };
}


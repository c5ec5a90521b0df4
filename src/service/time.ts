/** A DateTime64(3) text value in UTC for JSONEachRow inserts: `2026-01-02 03:04:05.678`. */
export function chTime(ms = Date.now()): string {
  const iso = new Date(ms).toISOString();
  // `YYYY-MM-DDTHH:MM:SS.sssZ`; years outside 0000-9999 have a longer, signed form.
  return iso.length === 24 ? `${iso.slice(0, 10)} ${iso.slice(11, 23)}` : iso.replace('T', ' ').replace('Z', '');
}

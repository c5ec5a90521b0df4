/** A DateTime64(3) text value in UTC for JSONEachRow inserts: `2026-01-02 03:04:05.678`. */
export function chTime(ms = Date.now()): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/**
 * Timestamps as text. Rows and log lines written within one second share
 * everything up to the milliseconds, so that part is formatted once a second.
 */
let cachedSecond = NaN;
/** `YYYY-MM-DDTHH:MM:SS.` of `cachedSecond`. */
let isoPrefix = '';
/** `YYYY-MM-DD HH:MM:SS.` of `cachedSecond`. */
let chPrefix = '';

/**
 * The milliseconds of `ms` past its whole second, with the prefixes above set
 * to that second; -1 when `ms` is not a whole number of milliseconds in years 0000-9999.
 */
function split(ms: number): number {
  if (!Number.isSafeInteger(ms)) return -1;
  const within = ((ms % 1000) + 1000) % 1000;
  const second = ms - within;
  if (second !== cachedSecond) {
    const iso = new Date(second).toISOString();
    // Years outside 0000-9999 have a longer, signed form.
    if (iso.length !== 24) return -1;
    isoPrefix = iso.slice(0, 20);
    chPrefix = `${iso.slice(0, 10)} ${iso.slice(11, 20)}`;
    cachedSecond = second;
  }
  return within;
}

function millis(n: number): string {
  return n < 10 ? `00${n}` : n < 100 ? `0${n}` : String(n);
}

/** `new Date(ms).toISOString()`: `2026-01-02T03:04:05.678Z`. */
export function isoTime(ms = Date.now()): string {
  const within = split(ms);
  return within < 0 ? new Date(ms).toISOString() : `${isoPrefix}${millis(within)}Z`;
}

/** A DateTime64(3) text value in UTC for JSONEachRow inserts: `2026-01-02 03:04:05.678`. */
export function chTime(ms = Date.now()): string {
  const within = split(ms);
  if (within >= 0) return chPrefix + millis(within);
  const iso = new Date(ms).toISOString();
  // `YYYY-MM-DDTHH:MM:SS.sssZ`; years outside 0000-9999 have a longer, signed form.
  return iso.length === 24 ? `${iso.slice(0, 10)} ${iso.slice(11, 23)}` : iso.replace('T', ' ').replace('Z', '');
}

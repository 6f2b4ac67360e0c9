/** Times and numbers as the alerts write them: UTC to the second, whole numbers grouped. */

export function time(ms: number | undefined | null): string {
  return ms === undefined || ms === null ? '' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function ago(ms: number | undefined, now = Date.now()): string {
  if (ms === undefined) return 'never';
  const s = Math.round((now - ms) / 1000);
  if (s < 0) return `in ${-s} s`;
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

const GROUPED = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function num(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  return GROUPED.format(n);
}

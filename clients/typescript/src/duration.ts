/** herald's duration strings (`"1500ms"`, `"30s"`, `"1m"`) and milliseconds. */

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration for herald: milliseconds become `"<n>ms"`, strings pass as they are. */
export function toDuration(value: number | string): string {
  if (typeof value === "string") return value;
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`not a duration: ${value}`);
  return `${Math.round(value)}ms`;
}

/** Milliseconds of a herald duration string or a number of milliseconds. */
export function parseDuration(value: number | string): number {
  if (typeof value === "number") return value;
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(value.trim());
  const unit = match?.[2];
  if (!match || unit === undefined) throw new RangeError(`not a herald duration: ${JSON.stringify(value)}`);
  return Number(match[1]) * (UNITS[unit] ?? 1);
}

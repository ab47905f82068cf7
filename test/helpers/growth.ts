/**
 * The least of up to `attempts` measurements of a cost ratio, stopping at the first below `linear`. A linear
 * cost is below it most of the time and a quadratic one never is, however quiet the machine: a busy moment
 * (another test's processes, a build) can only inflate a ratio, so retrying keeps the check able to fail
 * while it stops failing on the machine's bad moments.
 */
export function leastRatio(measure: () => number, linear: number, attempts = 3): number {
  let least = Number.POSITIVE_INFINITY;
  for (let i = 0; i < attempts && least >= linear; i++) least = Math.min(least, measure());
  return least;
}

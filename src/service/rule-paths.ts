import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { ValidationError } from '../errors.js';
import { describeErrno } from '../io/files.js';

export interface RulePathsOptions {
  /** Names the entry at this index of `rules` in a message: `config FILE: rules[1] = "/x"`. */
  describe: (index: number) => string;
  /** Where a configured path is on this machine, when that differs (`install --root`: under the root). */
  locate?: (path: string) => string;
  /** Directories the caller is about to create empty (install: /etc/execsentry/rules.d on a first install). */
  aboutToCreate?: readonly string[];
}

export interface RulePaths {
  /** What the rule loader reads (located), in the configured order. */
  load: string[];
  /** Configured directories passed over because they hold nothing yet. */
  empty: string[];
}

/**
 * The configured rule paths checked before the loader reads them, so that a path that does not exist is
 * refused with one line naming where it was configured (the loader alone would name only the path, and the
 * service would restart into the same error). An empty directory is passed over while another entry
 * remains: a drop-in directory such as /etc/execsentry/rules.d holds nothing until the first rule is put in
 * it, and that must not stop the agent. Whatever is in a path (bad rules, files that are no rules) is the
 * loader's to report.
 */
export async function rulePathsToLoad(paths: readonly string[], options: RulePathsOptions): Promise<RulePaths> {
  const locate = options.locate ?? ((path: string) => path);
  const load: string[] = [];
  const empty: Array<{ path: string; index: number }> = [];
  for (const [index, path] of paths.entries()) {
    const located = locate(path);
    if (options.aboutToCreate?.includes(path) === true && !existsSync(located)) {
      empty.push({ path, index });
      continue;
    }
    try {
      // Hidden entries are passed over by the loader too (editor swap files, .keep).
      if ((await readdir(located)).every((name) => name.startsWith('.'))) empty.push({ path, index });
      else load.push(located);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') {
        load.push(located);
        continue;
      }
      const where = located === path ? '' : `${located}: `;
      throw new ValidationError(`${options.describe(index)}: ${where}${describeErrno(err)}`);
    }
  }
  const [first] = empty;
  if (load.length === 0 && first !== undefined) {
    throw new ValidationError(`${options.describe(first.index)}: an empty directory, and no other rules path holds anything: no rule to run`);
  }
  return { load, empty: empty.map((entry) => entry.path) };
}

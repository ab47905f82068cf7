import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { ConfigSchema, environmentOverrides, OutputSchema, secretFileSettings, unwrapSchema } from '../config.js';

/** One option of the configuration, as the documentation shows it. */
export interface OptionDoc {
  /** dotted path: `sensor.maxArgsBytes` */
  path: string;
  variable: string;
  /** the default as JSON, or "(unset)" */
  defaultValue: string;
  /** its description, with its range when it is a bounded number */
  description: string;
}

/** Every option of the config schema, from its defaults and .describe() texts (README and man page). */
export function configOptionDocs(): OptionDoc[] {
  const variables = new Map(environmentOverrides().map((override) => [override.path.join('.'), override.variable]));
  const docs: OptionDoc[] = [];
  const visit = (shape: Record<string, z.ZodType>, path: string[]): void => {
    for (const [key, field] of Object.entries(shape)) {
      const here = [...path, key];
      const inner = unwrapSchema(field);
      if (inner._zod.def.type === 'object') {
        visit((inner as z.ZodObject).shape as Record<string, z.ZodType>, here);
        continue;
      }
      const dotted = here.join('.');
      docs.push({ path: dotted, variable: variables.get(dotted) ?? '', defaultValue: defaultOf(field), description: descriptionOf(field) + rangeOf(inner) });
    }
  };
  visit(ConfigSchema.shape as unknown as Record<string, z.ZodType>, []);
  return docs;
}

/** Every setting an entry of `outputs` takes, with its description. */
export function outputSettingDocs(): Array<{ key: string; description: string }> {
  const secrets = new Map(secretFileSettings().map((pair) => [pair.file, pair.secret]));
  return Object.entries(OutputSchema.shape as Record<string, z.ZodType>).map(([key, field]) => {
    const secretOf = secrets.get(key);
    const note = secretOf !== undefined ? ` — read into \`${secretOf}\` at start; \`credential:NAME\` reads \`$CREDENTIALS_DIRECTORY/NAME\`` : key.endsWith('File') ? ' — `credential:NAME` allowed' : '';
    return { key, description: descriptionOf(field) + rangeOf(unwrapSchema(field)) + note };
  });
}

/**
 * The README's option tables, written from the zod schema's defaults and .describe() texts so the
 * documentation cannot drift from the code: `node dist/service/options-doc.js` prints them as markdown.
 */
export function optionsMarkdown(): string {
  const rows: string[] = ['| option | environment | default | description |', '|---|---|---|---|'];
  for (const option of configOptionDocs()) rows.push(`| \`${option.path}\` | \`${option.variable}\` | ${option.defaultValue === '(unset)' ? '(unset)' : `\`${option.defaultValue}\``} | ${cell(option.description)} |`);
  const outputRows: string[] = ['| setting | description |', '|---|---|'];
  for (const setting of outputSettingDocs()) outputRows.push(`| \`${setting.key}\` | ${cell(setting.description)} |`);
  return `${rows.join('\n')}\n\nEach entry of \`outputs\` takes these settings:\n\n${outputRows.join('\n')}\n`;
}

function descriptionOf(schema: z.ZodType): string {
  let current: z.ZodType | undefined = schema;
  while (current !== undefined) {
    if (current.description !== undefined) return current.description;
    current = (current._zod.def as { innerType?: z.ZodType }).innerType;
  }
  return '';
}

function defaultOf(schema: z.ZodType): string {
  let current: z.ZodType | undefined = schema;
  while (current !== undefined) {
    const def = current._zod.def as { type: string; defaultValue?: unknown; innerType?: z.ZodType };
    if (def.type === 'default') return JSON.stringify(def.defaultValue);
    current = def.innerType;
  }
  return '(unset)';
}

/** A number's bounds as the schema enforces them: " (1024 to 6291456)". */
function rangeOf(schema: z.ZodType): string {
  if (schema._zod.def.type !== 'number') return '';
  const { minValue, maxValue } = schema as z.ZodNumber;
  const bound = (value: number | null): string | undefined => (value === null || !Number.isFinite(value) || Math.abs(value) >= Number.MAX_SAFE_INTEGER ? undefined : String(value));
  const low = bound(minValue);
  const high = bound(maxValue);
  if (low !== undefined && high !== undefined) return ` (${low} to ${high})`;
  if (low !== undefined) return ` (at least ${low})`;
  if (high !== undefined) return ` (at most ${high})`;
  return '';
}

/** Pipes would end a table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  process.stdout.write(optionsMarkdown());
}

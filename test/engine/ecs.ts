import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

interface EcsField {
  type: string;
  array?: boolean;
}

const ECS_FIELDS_FILE = new URL('../../../shared/ecs/ecs-fields.json', import.meta.url);

const DEFEND_FIELDS_FILE = new URL('../../../shared/ecs/elastic-defend-linux-exec-fields.txt', import.meta.url);

/**
 * The types of the Elastic Defend `Ext` fields execsentry emits, as Defend's process data stream maps them
 * (elastic/endpoint-package, package/endpoint/data_stream/process/fields/fields.yml). A field counts only if
 * Defend's Linux exec event has it too.
 */
const DEFEND_EXT_TYPES: Record<string, EcsField> = {
  'process.Ext.ancestry': { type: 'keyword', array: true },
  'user.Ext.real.id': { type: 'keyword' },
  'user.Ext.real.name': { type: 'keyword' },
  'group.Ext.real.id': { type: 'keyword' },
  'group.Ext.real.name': { type: 'keyword' },
};

let fields: Record<string, EcsField> | undefined;

/** ECS fields, and the Defend Ext fields above that Defend's Linux exec event carries. */
function ecsFields(): Record<string, EcsField> {
  if (fields === undefined) {
    const ecs = (JSON.parse(readFileSync(ECS_FIELDS_FILE, 'utf8')) as { fields: Record<string, EcsField> }).fields;
    const defend = new Set(readFileSync(DEFEND_FIELDS_FILE, 'utf8').split('\n'));
    fields = { ...ecs, ...Object.fromEntries(Object.entries(DEFEND_EXT_TYPES).filter(([path]) => defend.has(path))) };
  }
  return fields;
}

/** Whether a JSON value fits an ECS (Elasticsearch) field type. */
function fitsType(value: unknown, type: string): boolean {
  switch (type) {
    case 'keyword':
    case 'constant_keyword':
    case 'wildcard':
    case 'match_only_text':
    case 'text':
      return typeof value === 'string';
    case 'long':
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'float':
    case 'double':
    case 'scaled_float':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    case 'date':
      return typeof value === 'string' && !Number.isNaN(Date.parse(value)) && /^\d{4}-\d{2}-\d{2}T/.test(value);
    case 'ip':
      return typeof value === 'string';
    default:
      return false;
  }
}

/** Every leaf of `document` as [dotted path, value, was in an array]; empty arrays count as leaves. */
export function leaves(document: unknown, prefix = ''): [string, unknown, boolean][] {
  const out: [string, unknown, boolean][] = [];
  const visit = (value: unknown, path: string, inArray: boolean): void => {
    if (Array.isArray(value)) {
      if (value.length === 0) out.push([path, value, true]);
      for (const item of value) visit(item, path, true);
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, child] of Object.entries(value)) visit(child, path === '' ? key : `${path}.${key}`, inArray);
    } else out.push([path, value, inArray]);
  };
  visit(document, prefix, false);
  return out;
}

/**
 * Asserts that every field of `document` is an ECS field of the right type (list fields as arrays), or
 * lives under execsentry.*. Returns the execsentry.* leaves for further checks.
 */
export function expectEcsConformant(document: object): string[] {
  const known = ecsFields();
  const problems: string[] = [];
  const own: string[] = [];
  for (const [path, value, inArray] of leaves(document)) {
    if (path === 'execsentry' || path.startsWith('execsentry.')) {
      own.push(path);
      continue;
    }
    const field = known[path];
    if (field === undefined) {
      problems.push(`${path}: not an ECS field`);
      continue;
    }
    if (field.array === true && !inArray) problems.push(`${path}: ECS lists it as an array, got a single value`);
    if (!(Array.isArray(value) && value.length === 0) && !fitsType(value, field.type)) {
      problems.push(`${path}: ${JSON.stringify(value)} is not of ECS type ${field.type}`);
    }
  }
  expect(problems).toEqual([]);
  return own;
}

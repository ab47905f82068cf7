/**
 * Multi-fields: sub-fields Elasticsearch indexes from their parent field's value (`process.name.caseless`,
 * `process.command_line.text`). A document never holds them, so KQL reads the parent and matches as the
 * sub-field's type. Facts from Elastic Defend's process data stream (elastic/endpoint-package,
 * package/endpoint/data_stream/process/fields/fields.yml), the mapping execsentry's events are matched as.
 *
 * - caseless: keyword, `lowercase` normalizer, ignore_above 1024 (Defend)
 * - text: text / match_only_text, standard analyzer
 */
export type MultiFieldType = 'caseless' | 'text';

/** Defend gives these both a caseless and a text sub-field. */
const CASELESS_AND_TEXT = [
  'host.os.full',
  'host.os.name',
  ...['process', 'process.parent', 'process.entry_leader', 'process.group_leader', 'process.session_leader'].flatMap((process) =>
    ['command_line', 'executable', 'name', 'working_directory'].map((field) => `${process}.${field}`),
  ),
  'process.previous.executable',
];

/** A text sub-field only. */
const TEXT_ONLY = [
  'process.entry_leader.attested_user.name',
  ...['process', 'process.parent', 'process.entry_leader', 'process.group_leader', 'process.session_leader'].flatMap((process) =>
    ['user.name', 'real_user.name', 'saved_user.name'].map((field) => `${process}.${field}`),
  ),
  'process.title',
  'process.parent.title',
  'user.full_name',
  'user.name',
];

function build(): ReadonlyMap<string, ReadonlyMap<string, MultiFieldType>> {
  const fields = new Map<string, Map<string, MultiFieldType>>();
  const add = (parent: string, name: string, type: MultiFieldType) => {
    let subFields = fields.get(parent);
    if (subFields === undefined) fields.set(parent, (subFields = new Map()));
    subFields.set(name, type);
  };
  for (const parent of CASELESS_AND_TEXT) {
    add(parent, 'caseless', 'caseless');
    add(parent, 'text', 'text');
  }
  for (const parent of TEXT_ONLY) add(parent, 'text', 'text');
  return fields;
}

/** Parent field (full dotted path) → its multi-fields by name. */
export const MULTI_FIELDS = build();

/**
 * Multi-fields: sub-fields Elasticsearch indexes from their parent field's value (`process.name.caseless`,
 * `process.command_line.text`). A document never holds them, so KQL reads the parent and matches as the
 * sub-field's type. Facts from Elastic Defend's process data stream (elastic/endpoint-package,
 * package/endpoint/data_stream/process/fields/fields.yml), the mapping execsentry's events are matched as,
 * and from ECS 9.3's Elasticsearch templates (elastic/ecs, generated/elasticsearch/composable/component),
 * for the fields of other documents `execsentry kql` may read.
 *
 * - caseless: keyword, `lowercase` normalizer, ignore_above 1024 (Defend)
 * - text: analyzed with the standard analyzer (Defend maps the process ones as text, ECS as match_only_text:
 *   the same matches)
 */
export type MultiFieldType = 'caseless' | 'text';

/** Defend adds a caseless sub-field to these (their text sub-field is ECS's, below). */
const CASELESS = [
  'host.os.full',
  'host.os.name',
  ...['process', 'process.parent', 'process.entry_leader', 'process.group_leader', 'process.session_leader'].flatMap((process) =>
    ['command_line', 'executable', 'name', 'working_directory'].map((field) => `${process}.${field}`),
  ),
  'process.previous.executable',
];

/**
 * ECS 9.3 (the newest generated templates found; field-types.ts comes from the 9.5.0-dev field list, which
 * has no multi-fields): every field with a `text` multi-field. Defend's process mapping has the same.
 */
const ECS_TEXT = [
  'client.as.organization.name', 'client.user.full_name', 'client.user.name', 'cloud.entity.display_name',
  'cloud.entity.name', 'cloud.origin.entity.display_name', 'cloud.origin.entity.name',
  'cloud.target.entity.display_name', 'cloud.target.entity.name', 'destination.as.organization.name',
  'destination.user.full_name', 'destination.user.name', 'email.subject', 'entity.display_name', 'entity.name',
  'entity.target.display_name', 'entity.target.name', 'error.stack_trace', 'file.path', 'file.target_path',
  'host.entity.display_name', 'host.entity.name', 'host.os.full', 'host.os.name',
  'host.target.entity.display_name', 'host.target.entity.name', 'host.target.os.full', 'host.target.os.name',
  'http.request.body.content', 'http.response.body.content', 'observer.os.full', 'observer.os.name',
  'orchestrator.entity.display_name', 'orchestrator.entity.name', 'organization.name', 'process.command_line',
  'process.entry_leader.attested_user.name', 'process.entry_leader.command_line',
  'process.entry_leader.executable', 'process.entry_leader.name', 'process.entry_leader.real_user.name',
  'process.entry_leader.saved_user.name', 'process.entry_leader.user.name',
  'process.entry_leader.working_directory', 'process.executable', 'process.group_leader.command_line',
  'process.group_leader.executable', 'process.group_leader.name', 'process.group_leader.real_user.name',
  'process.group_leader.saved_user.name', 'process.group_leader.user.name',
  'process.group_leader.working_directory', 'process.name', 'process.parent.command_line',
  'process.parent.executable', 'process.parent.name', 'process.parent.real_user.name',
  'process.parent.saved_user.name', 'process.parent.title', 'process.parent.user.name',
  'process.parent.working_directory', 'process.previous.executable', 'process.real_user.name',
  'process.saved_user.name', 'process.session_leader.command_line', 'process.session_leader.executable',
  'process.session_leader.name', 'process.session_leader.real_user.name',
  'process.session_leader.saved_user.name', 'process.session_leader.user.name',
  'process.session_leader.working_directory', 'process.title', 'process.user.name',
  'process.working_directory', 'server.as.organization.name', 'server.user.full_name', 'server.user.name',
  'service.entity.display_name', 'service.entity.name', 'service.origin.entity.display_name',
  'service.origin.entity.name', 'service.target.entity.display_name', 'service.target.entity.name',
  'source.as.organization.name', 'source.user.full_name', 'source.user.name',
  'threat.enrichments.indicator.as.organization.name', 'threat.enrichments.indicator.file.path',
  'threat.enrichments.indicator.file.target_path', 'threat.enrichments.indicator.url.full',
  'threat.enrichments.indicator.url.original', 'threat.indicator.as.organization.name',
  'threat.indicator.file.path', 'threat.indicator.file.target_path', 'threat.indicator.url.full',
  'threat.indicator.url.original', 'threat.technique.name', 'threat.technique.subtechnique.name', 'url.full',
  'url.original', 'user.changes.entity.display_name', 'user.changes.entity.name', 'user.changes.full_name',
  'user.changes.name', 'user.effective.entity.display_name', 'user.effective.entity.name',
  'user.effective.full_name', 'user.effective.name', 'user.entity.display_name', 'user.entity.name',
  'user.full_name', 'user.name', 'user.target.entity.display_name', 'user.target.entity.name',
  'user.target.full_name', 'user.target.name', 'user_agent.original', 'user_agent.os.full',
  'user_agent.os.name', 'vulnerability.description',
];

function build(): ReadonlyMap<string, ReadonlyMap<string, MultiFieldType>> {
  const fields = new Map<string, Map<string, MultiFieldType>>();
  const add = (parent: string, name: string, type: MultiFieldType) => {
    let subFields = fields.get(parent);
    if (subFields === undefined) fields.set(parent, (subFields = new Map()));
    subFields.set(name, type);
  };
  for (const parent of CASELESS) add(parent, 'caseless', 'caseless');
  for (const parent of ECS_TEXT) add(parent, 'text', 'text');
  return fields;
}

/** Parent field (full dotted path) → its multi-fields by name. */
export const MULTI_FIELDS = build();

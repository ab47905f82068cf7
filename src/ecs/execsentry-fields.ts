import type { EcsFieldType } from './field-types.js';

/**
 * The Elasticsearch types of execsentry's own event fields that are not keywords (the rest of
 * `execsentry.*` is keyword-like), so that KQL and EQL rules compare them as an index mapping them so
 * would: addresses as `ip` (CIDR ranges, IPv4-mapped forms), ports and device numbers as numbers.
 * Written by hand beside the generated ECS table: ECS does not define these fields.
 */
const STREAMS = ['stdin', 'stdout', 'stderr'] as const;

export const EXECSENTRY_FIELD_TYPES: ReadonlyMap<string, EcsFieldType> = new Map<string, EcsFieldType>([
  ...STREAMS.flatMap((stream): [string, EcsFieldType][] => {
    const at = `execsentry.stdio.${stream}`;
    return [
      [`${at}.char_device.major`, 'integer'],
      [`${at}.char_device.minor`, 'integer'],
      [`${at}.socket.local.ip`, 'ip'],
      [`${at}.socket.local.port`, 'integer'],
      [`${at}.socket.remote.ip`, 'ip'],
      [`${at}.socket.remote.port`, 'integer'],
    ];
  }),
  ['execsentry.user.system_account', 'boolean'],
]);
